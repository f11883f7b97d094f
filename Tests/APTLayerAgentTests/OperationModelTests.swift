import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerAgent
@testable import APTLayerCLI

/// The typed model: the state machine, and one operation whatever path carries it.
@Suite("typed operations", .tags(.fast))
struct OperationModelTests {
    @Test func stateMachineAllowsExactlyTheDrawnMoves() throws {
        let drawn: Set<String> = [
            "queued>running", "queued>cancelled", "running>succeeded", "running>failed", "running>cancelled", "running>interrupted",
        ]
        #expect(Set(TransactionState.transitions.map { "\($0.0.rawValue)>\($0.1.rawValue)" }) == drawn)
        // docs/agent.md draws the same moves.
        let doc = try String(contentsOfFile: "\(Paths.packageRoot)/docs/agent.md", encoding: .utf8)
        for move in drawn { #expect(doc.contains("`\(move.replacingOccurrences(of: ">", with: " → "))`"), "docs/agent.md lacks \(move)") }
        for from in TransactionState.allCases {
            for to in TransactionState.allCases {
                var record = TransactionRecord(id: "walk", operation: .rollback, state: from, requester: "test")
                if drawn.contains("\(from.rawValue)>\(to.rawValue)") {
                    try record.move(to: to)
                    #expect(record.state == to)
                } else {
                    #expect(throws: IllegalTransition(from: from, to: to)) { try record.move(to: to) }
                    #expect(record.state == from)
                }
            }
        }
        #expect(TransactionState.allCases.filter(\.isFinished) == [.succeeded, .failed, .cancelled, .interrupted])
    }

    /// Every CLI verb with every flag it takes: the operation it builds survives the API request
    /// (client side), the server's decoding, and the journal's stored form unchanged.
    @Test(arguments: CLICases.all)
    func cliOperationIsTheSameOnEveryPath(_ arguments: [String], _ expected: HostOperation) throws {
        let command = try APTLayer.parseAsRoot(arguments)
        let built = try #require(command as? any OperationCommand, "\(arguments) is not an operation").operation()
        #expect(built == expected)
        // Client → wire → server.
        let request = try Components.Schemas.TransactionRequest(built)
        let wire = try JSONEncoder().encode(request)
        let received = try HostOperation(try JSONDecoder().decode(Components.Schemas.TransactionRequest.self, from: wire))
        #expect(received == built)
        // Journal form, and the versioned Codable form.
        #expect(try HostOperation(stored: built.kind.rawValue, arguments: built.arguments.canonicalJSON, format: HostOperation.format) == built)
        #expect(try JSONDecoder().decode(HostOperation.self, from: try JSONEncoder().encode(built)) == built)
    }

    /// The document's per-operation request schemas and the model's checks of stored and local
    /// operations take the same arguments (the document is where they are said).
    @Test func theDocumentAndTheModelAgreeOnEachOperationsArguments() throws {
        let request = try #require(DecodingProblem.schemas["TransactionRequest"] as? [String: Any])
        let mapping = try #require((request["discriminator"] as? [String: Any])?["mapping"] as? [String: String])
        #expect(Set(mapping.keys) == Set(HostOperation.Kind.allCases.map(\.rawValue)))
        for kind in HostOperation.Kind.allCases {
            let variant = DecodingProblem.resolve(["$ref": try #require(mapping[kind.rawValue])])
            let arguments = DecodingProblem.resolve(try #require((variant["properties"] as? [String: Any])?["arguments"] as? [String: Any]))
            #expect(Set(DecodingProblem.properties(arguments)) == HostOperation.allowedKeys(kind), "\(kind)")
            #expect(variant["additionalProperties"] as? Bool == false && arguments["additionalProperties"] as? Bool == false, "\(kind)")
        }
    }

    @Test func everyKindHasACLICaseAndEveryLayeringFlagIsCovered() {
        let kinds = Set(CLICases.all.map(\.1.kind))
        #expect(kinds == Set(HostOperation.Kind.allCases))
        for kind in HostOperation.Kind.allCases where kind.isLayering {
            let flags = CLICases.all.filter { $0.1.kind == kind }.compactMap(\.1.flags)
            #expect(flags.contains { $0.idempotent } && flags.contains { $0.dryRun } && flags.contains { $0.allowKernel })
            #expect(flags.contains { $0.lockFinalization } && flags.contains { $0.refresh }, "\(kind)")
        }
    }

    @Test(arguments: [
        (HostOperation.Kind.install, HostOperation.Arguments(), "install needs a non-empty packages list"),
        (.install, .init(packages: ["a"], index: 1), "argument index does not apply to install"),
        (.rollback, .init(dryRun: true), "argument dryRun does not apply to rollback"),
        (.deploy, .init(target: ""), "deploy needs a target (version or checksum)"),
        (.pin, .init(index: -1), "index must be zero or more"),
        (.kargs, .init(), "kargs needs append, delete or replace"),
        (.applyLive, .init(packages: ["a"]), "argument packages does not apply to apply-live"),
        (.uninstall, .init(packages: ["a"], applyLive: true), "argument applyLive does not apply to uninstall"),
        (.install, .init(packages: ["a"], dryRun: true, applyLive: true), "install: applyLive and dryRun do not go together"),
    ])
    func invalidArgumentsAreRefusedInOneLine(_ kind: HostOperation.Kind, _ arguments: HostOperation.Arguments, _ message: String) {
        #expect(throws: OperationError(message)) { try HostOperation(kind: kind, arguments: arguments) }
    }

    /// The CLI prints from the model (``HostStatus``, ``TransactionRecord``): an agent's documents
    /// become model values and back without losing a field, so `--json` prints what the agent
    /// served, and the text shows the running transaction, local packages and the agent.
    @Test func theCLIsModelViewKeepsTheAgentsDocuments() throws {
        let at = Date(timeIntervalSince1970: 1_780_000_000)
        var running = TransactionRecord(
            id: "t1", operation: .install(packages: ["fixture-app"], flags: .init(dryRun: true)), state: .running, requester: "cn=ops",
            idempotencyKey: "k1", createdAt: at)
        running.startedAt = at.addingTimeInterval(2)
        let wireRunning = Components.Schemas.Transaction(running)
        let deployment = Components.Schemas.Deployment(
            index: 0, id: "debian-abc.0", osname: "debian", serial: 0, checksum: String(repeating: "a", count: 64), version: "2.0",
            committedAt: at, origin: "debian:stable", booted: false, _default: true, staged: true, pinned: false,
            baseChecksum: String(repeating: "b", count: 64), baseVersion: "1.0", baseCommittedAt: at.addingTimeInterval(-60),
            requestedPackages: ["fixture-app"],
            requestedLocalPackages: [.init(sha256: String(repeating: "c", count: 64), name: "local", file: "local_1.0_all")],
            requestedBaseRemovals: ["fixture-removable"], layeredPackages: [.init(name: "fixture-app", version: "1.0", architecture: "all")],
            kernelArguments: "quiet")
        let wire = Components.Schemas.StatusDocument(
            schema: .aptLayer_statusV2, sysroot: "/", deployments: [deployment],
            agent: .init(version: "9.9", uptimeSeconds: 12, journalReset: .init(at: at, movedTo: "/x.bad", reason: "garbage")),
            transaction: wireRunning)
        let host = try HostStatus(wire)
        #expect(host.running == running)
        #expect(host.document == wire)
        let text = StatusPrinter.text(host, verbose: true)
        #expect(text.contains("State: busy") && text.contains("Transaction: install fixture-app (t1, running, by cn=ops"))
        #expect(text.contains("Agent: apt-layerd 9.9") && text.contains("LocalPackages: local_1.0_all (ccc"))
        #expect(text.contains("→ [0] debian:debian:stable (default, staged)") && text.contains("BaseCommit: bbb"))
        // Every operation the CLI builds survives the transaction document both ways.
        for (_, operation) in CLICases.all {
            var record = TransactionRecord(id: "t2", operation: operation, state: .queued, requester: "uid:0", createdAt: at)
            try record.move(to: .running, at: at)
            try record.move(to: .succeeded, at: at)
            record.changed = true
            record.diff = PackageDiff(added: [.init(name: "a", version: "1", architecture: "all")], removed: [], upgraded: [], downgraded: [])
            #expect(try Components.Schemas.Transaction(record).model() == record)
        }
        // A failed one keeps its kind.
        var failed = TransactionRecord(id: "t3", operation: .rollback, state: .running, requester: "uid:0", createdAt: at)
        try failed.move(to: .failed, at: at)
        failed.error = "not enough space on /boot: need 45 MiB, have 39 MiB"
        failed.failure = .outOfSpace
        #expect(try Components.Schemas.Transaction(failed).model() == failed)
        #expect(Components.Schemas.Transaction(failed).failure?.rawValue == "out-of-space")
        #expect(Set(Components.Schemas.Transaction.FailurePayload.allCases.map(\.rawValue)) == Set(FailureKind.allCases.map(\.rawValue)))
        #expect(HistoryPrinter.text([running], limit: 20).contains("install fixture-app"))
    }

    @Test func eventsRoundTripThroughTheAPIAndTheJournal() throws {
        let events: [TransactionEvent] = [
            .taskBegin(task: "Resolving packages"), .taskEnd(task: "Resolving packages"), .message(text: "note"),
            .progress(done: 1, total: 3, item: "fixture-lib"), .finished(state: .failed, error: "boom", changed: nil),
            .finished(state: .succeeded, error: nil, changed: false),
        ]
        for event in events {
            let api = Components.Schemas.TransactionEvent(event)
            let wire = try JSONEncoder().encode(api)
            #expect(try JSONDecoder().decode(Components.Schemas.TransactionEvent.self, from: wire).model == event)
            #expect(try TransactionEvent(kind: event.kind, json: event.json) == event)
            #expect(event.json.contains("\"kind\":\"\(event.kind.rawValue)\""))
        }
    }
}

/// CLI argument lists and the operation each must build.
enum CLICases {
    static let allFlags = ["--idempotent", "--dry-run", "--allow-kernel", "--lock-finalization", "--refresh"]
    static let every = LayeringFlags(idempotent: true, dryRun: true, allowKernel: true, lockFinalization: true, refresh: true)

    /// Each layering verb bare, with each flag alone, and with all of them.
    static func layering(_ verb: [String], _ tail: [String], _ make: (LayeringFlags) -> HostOperation) -> [([String], HostOperation)] {
        var cases = [(verb + tail, make(.init()))]
        let single: [(String, LayeringFlags)] = [
            ("--idempotent", .init(idempotent: true)), ("-n", .init(dryRun: true)), ("--allow-kernel", .init(allowKernel: true)),
            ("--lock-finalization", .init(lockFinalization: true)), ("--refresh", .init(refresh: true)),
        ]
        cases += single.map { (verb + [$0.0] + tail, make($0.1)) }
        cases.append((verb + allFlags + tail, make(every)))
        return cases
    }

    static let all: [([String], HostOperation)] =
        layering(["install"], ["fixture-app", "/tmp/x.deb"]) { .install(packages: ["fixture-app", "/tmp/x.deb"], flags: $0) }
        + layering(["uninstall"], ["fixture-app"]) { .uninstall(packages: ["fixture-app"], all: false, flags: $0) }
        + [(["uninstall", "--all"], .uninstall(packages: [], all: true, flags: .init()))]
        + layering(["override", "remove"], ["fixture-base"]) { .overrideRemove(packages: ["fixture-base"], flags: $0) }
        + layering(["override", "replace"], ["/tmp/fixture-base_2.0_all.deb"]) {
            .overrideReplace(packages: ["/tmp/fixture-base_2.0_all.deb"], fromRepo: nil, flags: $0)
        }
        + [
            (
                ["override", "replace", "--from-repo", "bookworm-security", "curl"],
                .overrideReplace(packages: ["curl"], fromRepo: "bookworm-security", flags: .init())
            ),
            // A relative .deb path is made absolute, as install's are.
            (
                ["override", "replace", "hotfix/curl_8.0_amd64.deb"],
                .overrideReplace(
                    packages: [FileManager.default.currentDirectoryPath + "/hotfix/curl_8.0_amd64.deb"], fromRepo: nil, flags: .init())
            ),
        ]
        + layering(["override", "reset"], ["fixture-base"]) { .overrideReset(packages: ["fixture-base"], all: false, flags: $0) }
        + [(["override", "reset", "--all"], .overrideReset(packages: [], all: true, flags: .init()))]
        + layering(["upgrade"], []) { .upgrade(check: false, flags: $0) }
        + [(["upgrade", "--check"], .upgrade(check: true, flags: .init()))]
        + layering(["deploy"], ["1.0"]) { .deploy(target: "1.0", flags: $0) }
        + layering(["rebase"], ["test/other"]) { .rebase(ref: "test/other", flags: $0) }
        + [
            (
                ["rebase", "--remote-url", "http://127.0.0.1:1/repo", "acme:acme/stable", String(repeating: "a", count: 64)],
                .rebase(ref: "acme:acme/stable", target: String(repeating: "a", count: 64), remoteURL: "http://127.0.0.1:1/repo", flags: .init())
            )
        ]
        + [
            (["rollback"], .rollback), (["finalize"], .finalize),
            (["apply-live"], .applyLive(reset: false, options: .init())),
            (["apply-live", "--reset"], .applyLive(reset: true, options: .init())),
            (
                ["apply-live", "--allow-replacement", "--start"],
                .applyLive(reset: false, options: .init(allowReplacement: true, startServices: true))
            ),
            (["install", "-A", "fixture-app"], .install(packages: ["fixture-app"], flags: .init(live: .init()))),
            (
                ["install", "--apply-live", "--allow-replacement", "--start", "--refresh", "fixture-app"],
                .install(packages: ["fixture-app"], flags: .init(refresh: true, live: .init(allowReplacement: true, startServices: true)))
            ),
            (["cleanup"], .cleanup(pending: false, rollback: false)), (["cleanup", "-p"], .cleanup(pending: true, rollback: false)),
            (["cleanup", "--rollback"], .cleanup(pending: false, rollback: true)),
            (["cleanup", "-p", "-r"], .cleanup(pending: true, rollback: true)),
            (["pin", "1"], .pin(index: 1)), (["unpin", "0"], .unpin(index: 0)),
            (["kargs", "--append", "a=1"], .kargs(.init(append: ["a=1"]))),
            (["kargs", "--delete", "quiet", "--replace", "b=2", "--append", "c"], .kargs(.init(append: ["c"], delete: ["quiet"], replace: ["b=2"]))),
        ]
}
