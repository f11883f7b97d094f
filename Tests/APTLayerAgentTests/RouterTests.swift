import Foundation
import HummingbirdTesting
import TestSupport
import Testing

@testable import APTLayerAgent

/// The API's router in process (``RouterBed``): problems, methods, roles, body checks and request
/// validation, each answered before anything runs. Moved here from the process tests
/// (`HardeningTests`), which keep what only a running agent shows.
@Suite("API router (in process)", .tags(.fast))
struct RouterTests {
    /// The ids of every journaled transaction.
    static func transactionIDs(_ client: any TestClientProtocol) async throws -> [String] {
        let list = try await client.send(.get, "/v1/transactions")
        #expect(list.status == 200, "\(list.body)")
        return (list.json["transactions"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    /// Finding 9: HEAD on every GET route, 405 with `Allow`, a 404 that names the path, RFC 3339
    /// with fractions and offsets.
    @Test func methodsPathsAndDates() async throws {
        try await RouterBed.with(caller: .init(identity: "reader", role: .reader, remote: true)) { _, client in
            let head = try await client.send(.head, "/v1/transactions")
            #expect(head.status == 200)
            #expect(head.body.isEmpty, "\(head.body)")
            let put = try await client.send(.put, "/v1/status")
            #expect(put.status == 405)
            #expect(put.headers[.allow] == "GET, HEAD", "\(put.headers)")
            #expect(put.json["type"] as? String == "urn:apt-layer:problem:method-not-allowed")
            #expect(try await client.send(.delete, "/v1/transactions").headers[.allow] == "GET, HEAD, POST")
            #expect(try await client.send(.patch, "/v1/transactions/some-id").headers[.allow] == "DELETE, GET, HEAD")
            let missing = try await client.send(.get, "/v1/nothing-here")
            #expect(missing.status == 404)
            #expect(missing.detail.contains("no such path: /v1/nothing-here"), "\(missing.body)")
            #expect(missing.headers[.contentType] == "application/problem+json")
            for since in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.250Z", "2026-01-01T00:00:00%2B01:00", "2026-01-01T00:00:00.5-07:00"] {
                #expect(try await client.send(.get, "/v1/transactions?since=\(since)").status == 200, "\(since)")
            }
            #expect(try await client.send(.get, "/v1/transactions?since=yesterday").status == 400)
            #expect(try await client.send(.get, "/v1/openapi.yaml").body.hasPrefix("openapi:"))
        }
    }

    /// Duplicate keys, explicit nulls, unknown keys and oversized bodies are the client's mistakes
    /// (400 and 413), and nothing is journaled.
    @Test func requestBodiesAreCheckedBeforeAnythingRuns() async throws {
        try await RouterBed.with(extra: "max-body-bytes: 2048") { _, client in
            let cases: [(String, Int, String)] = [
                (#"{"operation":"rollback","operation":"kargs"}"#, 400, "appears twice"),
                (#"{"operation":"kargs","arguments":{"append":["a=1"],"append":["b=2"]}}"#, 400, "appears twice"),
                (#"{"operation":"cleanup","arguments":{"ref":null}}"#, 400, "is null"),
                (#"{"operation":"rollback","idempotencyKey":null}"#, 400, "is null"),
                (#"{"operation":"rollback","colour":"blue"}"#, 400, "colour"),
                (#"{"operation":"levitate"}"#, 400, "levitate"),
                (#"{"operation":"kargs""#, 400, "not valid JSON"),
                (#"{"operation":"kargs","arguments":{"append":["\#(String(repeating: "x", count: 3000))"]}}"#, 413, "limit is 2048 bytes"),
            ]
            for (body, status, words) in cases {
                let reply = try await client.send(.post, "/v1/transactions", json: body)
                #expect(reply.status == status, "\(body.prefix(80)): \(reply.body)")
                #expect(reply.detail.contains(words), "\(body.prefix(80)): \(reply.body)")
                #expect(reply.headers[.contentType] == "application/problem+json")
            }
            #expect(try await Self.transactionIDs(client).isEmpty)
        }
    }

    /// Each bad request gets its problem document with the status the case names; nothing is
    /// journaled (one agent per case, as the process tests had it).
    @Test(arguments: [
        ("malformed JSON", "{\"operation\":", 400),
        ("wrong types", #"{"operation":"install","arguments":{"packages":"fixture-app"}}"#, 400),
        ("unknown operation", #"{"operation":"format-disk"}"#, 400),
        ("unknown argument", #"{"operation":"install","arguments":{"packages":["a"],"force":true}}"#, 400),
        ("argument for another operation", #"{"operation":"rollback","arguments":{"packages":["a"]}}"#, 400),
        ("missing packages", #"{"operation":"install","arguments":{}}"#, 400),
        ("no packages (the schema's minItems, enforced by the agent)", #"{"operation":"install","arguments":{"packages":[]}}"#, 422),
        ("packages and all missing", #"{"operation":"uninstall","arguments":{}}"#, 422),
        ("unknown top-level key", #"{"operation":"rollback","extra":1}"#, 400),
    ])
    func badInputGetsProblems(_ name: String, _ body: String, _ expected: Int) async throws {
        try await RouterBed.with { _, client in
            let reply = try await client.send(.post, "/v1/transactions", json: body)
            #expect(reply.status == expected, "\(name): \(reply.body)")
            #expect(reply.headers[.contentType] == "application/problem+json", "\(name)")
            #expect((reply.json["type"] as? String)?.hasPrefix("urn:apt-layer:problem:") == true)
            #expect(reply.json["status"] as? Int == expected)
            #expect(try await Self.transactionIDs(client).isEmpty)
        }
    }

    /// The default body limit (64 KiB), bad cursors and limits, unknown transaction ids.
    @Test func hugeBodyBadCursorAndUnknownIDs() async throws {
        try await RouterBed.with(caller: .init(identity: "admin", role: .admin, remote: true)) { _, client in
            let huge = "{\"operation\":\"install\",\"arguments\":{\"packages\":[\"" + String(repeating: "a", count: 200_000) + "\"]}}"
            let big = try await client.send(.post, "/v1/transactions", json: huge)
            #expect(big.status == 413)
            #expect(big.json["type"] as? String == "urn:apt-layer:problem:body-too-large")
            let cursor = try await client.send(.get, "/v1/transactions?cursor=not-a-cursor")
            #expect(cursor.status == 400)
            #expect(cursor.headers[.contentType] == "application/problem+json")
            #expect(try await client.send(.get, "/v1/transactions?limit=0").status == 400)
            #expect(try await client.send(.get, "/v1/transactions/nope").status == 404)
            #expect(try await client.send(.delete, "/v1/transactions/nope").status == 404)
            #expect(try await client.send(.get, "/v1/transactions/nope/events").status == 404)
            // Different words, not a duplicate key: accepted (the transaction then fails here,
            // where no sysroot exists).
            #expect(
                try await client.send(.post, "/v1/transactions", json: #"{"operation":"kargs","arguments":{"append":["a=1","a=1"]}}"#).status == 202)
        }
    }

    /// Each operation's request schema (openapi.yaml's `TransactionRequest`, one per operation by
    /// `operation`) decides which arguments it takes; the problem names the member and what the
    /// document allows there, read from the variant the body's `operation` names.
    @Test func eachOperationsSchemaSaysWhatItTakes() async throws {
        try await RouterBed.with { _, client in
            let operations = [
                "install", "uninstall", "override-remove", "override-replace", "override-reset", "upgrade", "deploy", "rebase", "rollback", "cleanup",
                "kargs",
                "pin", "unpin", "finalize", "apply-live",
            ]
            let cases: [(String, String, String, [String]?)] = [
                (#"{"operation":"instal"}"#, "/operation", #"cannot be "instal""#, operations),
                (#"{"arguments":{}}"#, "/operation", "is required", operations),
                (#"{"operation":"install","arguments":{"pakages":["x"]}}"#, "/arguments/packages", "is required", nil),
                (
                    #"{"operation":"uninstall","arguments":{"pakages":["x"]}}"#, "/arguments/pakages", "is not a known member",
                    ["all", "allowKernel", "dryRun", "idempotent", "lockFinalization", "packages", "refresh"]
                ),
                (#"{"operation":"rollback","arguments":{"packages":["a"]}}"#, "/arguments/packages", "is not a known member", nil),
                (#"{"operation":"deploy","arguments":{}}"#, "/arguments/target", "is required", nil),
                (#"{"operation":"cleanup","arguments":{"pending":"yes"}}"#, "/arguments/pending", "must be true or false", nil),
            ]
            for (body, pointer, words, allowed) in cases {
                let reply = try await client.send(.post, "/v1/transactions", json: body)
                #expect(reply.status == 400, "\(body): \(reply.body)")
                #expect(reply.json["pointer"] as? String == pointer, "\(body): \(reply.body)")
                #expect(words.isEmpty || reply.detail.contains(words), "\(body): \(reply.body)")
                if let allowed { #expect(reply.json["allowed"] as? [String] == allowed, "\(body): \(reply.body)") }
            }
            #expect(try await Self.transactionIDs(client).isEmpty)
        }
    }

    /// A reader may read but not change; the refusal names the role needed.
    @Test func rolesAreEnforced() async throws {
        try await RouterBed.with(caller: .init(identity: "reader", role: .reader, remote: true)) { _, client in
            let post = try await client.send(.post, "/v1/transactions", json: #"{"operation":"rollback"}"#)
            #expect(post.status == 403)
            #expect(post.detail == "reader is reader; POST needs operator", "\(post.body)")
            #expect(try await client.send(.delete, "/v1/transactions/x").status == 403)
            #expect(try await Self.transactionIDs(client).isEmpty)
        }
    }

    /// Finding 1: kernel arguments that would inject a line, break quoting or overflow the command
    /// line are refused before 202 with a problem naming the argument.
    @Test func hostileKernelArgumentsAreRefused() async throws {
        try await RouterBed.with { _, client in
            let hostile: [(String, String)] = [
                (#"{"append":["quiet\ninitrd /evil.img"]}"#, "control"), (#"{"append":["probe=1\ntitle X"]}"#, "control"),
                (#"{"append":["probe a b"]}"#, "spaces"), (#"{"append":["probe=a b"]}"#, "space outside"), (#"{"append":[""]}"#, "empty"),
                (#"{"append":["a=\"b"]}"#, "unbalanced"),
                (#"{"append":["\"a\"=b"]}"#, "key"), (#"{"append":["=b"]}"#, "key"), (#"{"append":["tab\tx"]}"#, "control"),
                (#"{"append":["nul\u0000x"]}"#, "control"), (#"{"append":["caf\u00e9"]}"#, "non-ASCII"),
                (#"{"append":["ostree=/ostree/boot.1/evil"]}"#, "libostree"), (#"{"delete":["ostree"]}"#, "libostree"),
                (#"{"replace":["x=1\n"]}"#, "control"), ("{\"append\":[\"long=\(String(repeating: "x", count: 10_000))\"]}", "longer than"),
            ]
            for (arguments, words) in hostile {
                let reply = try await client.send(.post, "/v1/transactions", json: #"{"operation":"kargs","arguments":\#(arguments)}"#)
                #expect(reply.status == 422, "\(arguments.prefix(80)): \(reply.body)")
                #expect(reply.detail.contains(words), "\(arguments.prefix(80)): \(reply.body)")
            }
            #expect(try await client.send(.post, "/v1/transactions", json: #"{"operation":"pin","arguments":{"index":-1}}"#).status == 422)
            #expect(try await Self.transactionIDs(client).isEmpty)
        }
    }

    /// Finding 5: relative paths, control characters and `..` are refused for every caller; host
    /// paths only for mTLS callers (the local socket may name them).
    @Test func hostilePackagePathsAreRefused() async throws {
        try await RouterBed.with(caller: .init(identity: "uid:0", role: .admin)) { _, client in
            for path in [#""relative/x.deb""#, #""/tmp/a\u0000b.deb""#, #""/tmp/../etc/x.deb""#] {
                let reply = try await client.send(
                    .post, "/v1/transactions", json: #"{"operation":"install","arguments":{"packages":[\#(path)]}}"#)
                #expect(reply.status == 422, "\(path): \(reply.body)")
            }
            #expect(try await Self.transactionIDs(client).isEmpty)
        }
        try await RouterBed.with { _, client in
            let remote = try await client.send(.post, "/v1/transactions", json: #"{"operation":"install","arguments":{"packages":["/tmp/x.deb"]}}"#)
            #expect(remote.status == 403, "\(remote.body)")
            #expect(remote.detail.contains("host path"), "\(remote.body)")
        }
    }

    /// The loopback listener: Prometheus text with the agent's families, and health.
    @Test func metricsAndHealth() async throws {
        try await RouterBed.with { app, _ in
            try await app.metrics.test(.router) { client in
                let health = try await client.send(.get, "/v1/healthz")
                #expect(health.json["status"] as? String == "ok")
                let metrics = try await client.send(.get, "/metrics")
                #expect(metrics.headers[.contentType] == "text/plain; version=0.0.4")
                for family in ["apt_layer_transactions_total", "apt_layer_connections_limit_reached_total", "apt_layer_journal_reset 0"] {
                    #expect(metrics.body.contains(family), "\(family)")
                }
            }
        }
    }
}
