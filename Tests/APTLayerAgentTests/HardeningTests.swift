import APTLayerEngine
import APTLayerJournal
import Foundation
import Testing

@testable import APTLayerAgent

/// Hostile input against the real agent (issue 7's findings, each reproduced).
@Suite("hardening")
struct HardeningTests {
    /// The BLS entries hold only the keys libostree writes, one per line.
    static func entriesAreClean(_ bed: TestBed) throws -> Bool {
        let text = try Shell.run("cat \(bed.sysroot)/boot/loader/entries/*.conf")
        return text.split(separator: "\n").allSatisfy { line in
            ["title ", "version ", "options ", "linux ", "initrd ", "devicetree "].contains { line.hasPrefix($0) }
        }
    }

    /// Finding 1: kernel arguments that would inject a line, break quoting or overflow the command
    /// line are refused before 202 with a problem naming the argument; the sysroot stays loadable.
    @Test func hostileKernelArgumentsAreRefusedAndTheSysrootStaysLoadable() throws {
        let agent = try AgentBed()
        let before = try agent.bed.status
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
            let reply = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":\#(arguments)}"#)
            #expect(reply.status == 422, "\(arguments): \(reply.body)")
            #expect((reply.json["detail"] as? String)?.contains(words) == true, "\(arguments): \(reply.body)")
        }
        // Many valid words that together pass the kernel's limit are refused when applied.
        let many = (0..<60).map { "\"k\($0)=\(String(repeating: "v", count: 40))\"" }.joined(separator: ",")
        let tooLong = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":[\#(many)]}}"#)
        let id = try #require(tooLong.json["id"] as? String)
        let done = try agent.waitForTransaction(id)
        #expect(done["state"] as? String == "failed")
        #expect((done["error"] as? String)?.contains("over the kernel's 2048") == true, "\(done)")
        #expect(try agent.bed.status == before)
        // A quoted value with spaces round-trips: appended as one word, deleted as one word.
        let quoted = #"dyndbg=\"file a.c +p\""#
        for edit in ["append", "delete"] {
            let reply = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"\#(edit)":["\#(quoted)"]}}"#)
            let done = try agent.waitForTransaction(try #require(reply.json["id"] as? String))
            #expect(done["state"] as? String == "succeeded", "\(done)")
            let kargs = try agent.bed.status.deployments[0].kernelArguments
            #expect(kargs.contains(#"dyndbg="file a.c +p""#) == (edit == "append"), "\(kargs)")
        }
        #expect(try Self.entriesAreClean(agent.bed))
        #expect(try Shell.status("ostree admin status --sysroot=\(agent.bed.sysroot)").0 == 0)
        #expect(try agent.request("GET", "/v1/status", as: "reader").status == 200)
    }

    /// Finding 3: a certificate with two CNs is nobody; `dns-san` takes the one DNS SAN.
    @Test func ambiguousIdentitiesAreRefused() throws {
        let agent = try AgentBed()
        let twoCN = try agent.request("GET", "/v1/status", as: "twocn")
        #expect(twoCN.status == 403, "\(twoCN.body)")
        #expect((twoCN.json["detail"] as? String)?.contains("exactly one subject CN") == true)
        #expect(agent.logText.contains("client refused"))
        #expect(try agent.request("GET", "/v1/status", as: "sanop").status == 403)  // no CN at all
        agent.stop()
        let bySAN = try AgentBed(bed: agent.bed, extraConfig: "identity-source: dns-san")
        #expect(
            try bySAN.request("POST", "/v1/transactions", as: "sanop", body: #"{"operation":"kargs","arguments":{"append":["by=san"]}}"#).status
                == 202)
        #expect(try bySAN.request("GET", "/v1/status", as: "reader").status == 403)  // a CN-only certificate has no DNS SAN
    }

    /// Finding 5: package files are read once, as regular files, never waited on; relative paths,
    /// control characters and (over mTLS) host paths are refused before anything runs.
    @Test func hostilePackagePathsNeverBlockOrLeak() throws {
        let agent = try AgentBed()
        let dir = agent.bed.fixtures
        try Shell.run("mkfifo \(dir)/fifo.deb && ln -s \(agent.bed.debs)/fixture-app-1.0.deb \(dir)/link.deb")
        let before = try agent.bed.status
        for path in ["\(dir)/fifo.deb", "/dev/zero.deb", "\(dir)/link.deb", "/root/does-not-exist.deb"] {
            let started = Date()
            let (code, output) = try Shell.status("\(Paths.cli) install -q --agent unix:\(agent.socket) \(path) 2>&1")
            #expect(code == 1, "\(path): \(output)")
            #expect(output.contains("must be a readable regular .deb file"), "\(path): \(output)")
            #expect(Date().timeIntervalSince(started) < 20)
        }
        for body in [#"["relative/x.deb"]"#, #"["/tmp/a\u0000b.deb"]"#, #"["/tmp/../etc/x.deb"]"#] {
            let viaSocket = try Shell.run(
                "curl -s --unix-socket \(agent.socket) -H 'content-type: application/json' -d \(Shell.quote(#"{"operation":"install","arguments":{"packages":\#(body)}}"#)) -w '%{http_code}' -o /dev/null http://localhost/v1/transactions"
            )
            #expect(viaSocket == "422", "\(body)")
        }
        let remote = try agent.request(
            "POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["\#(agent.bed.debs)/fixture-app-1.0.deb"]}}"#)
        #expect(remote.status == 403, "\(remote.body)")
        #expect(try agent.bed.status == before)
        let local = try Shell.status("\(Paths.cli) install -q --agent unix:\(agent.socket) \(agent.bed.debs)/fixture-app-1.0.deb 2>&1")
        #expect(local.0 == 0, "\(local.1)")
    }

    /// Finding 9: HEAD, 405 with Allow, RFC 3339 with fractions and offsets, duplicate keys.
    @Test func httpConformance() throws {
        let agent = try AgentBed()
        let head = try agent.request("HEAD", "/v1/status", as: "reader", extra: "-I")
        #expect(head.status == 200, "\(head.headers)")
        #expect(!head.body.contains("{"), "\(head.body)")  // curl -I prints only the head
        let put = try agent.request("PUT", "/v1/status", as: "reader")
        #expect(put.status == 405)
        #expect(put.headers.lowercased().contains("allow: get, head"), "\(put.headers)")
        let delete = try agent.request("DELETE", "/v1/transactions", as: "admin")
        #expect(delete.status == 405)
        #expect(delete.headers.lowercased().contains("allow: get, head, post"), "\(delete.headers)")
        #expect(try agent.request("PATCH", "/v1/transactions/some-id", as: "admin").headers.lowercased().contains("allow: delete, get, head"))
        #expect(try agent.request("GET", "/v1/nothing-here", as: "reader").status == 404)
        for since in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.250Z", "2026-01-01T00:00:00%2B01:00", "2026-01-01T00:00:00.5-07:00"] {
            #expect(try agent.request("GET", "/v1/transactions?since=\(since)", as: "reader").status == 200, "\(since)")
        }
        #expect(try agent.request("GET", "/v1/transactions?since=yesterday", as: "reader").status == 400)
        let twice = try agent.request("POST", "/v1/transactions", body: #"{"operation":"rollback","operation":"kargs"}"#)
        #expect(twice.status == 400)
        #expect((twice.json["detail"] as? String)?.contains("appears twice") == true, "\(twice.body)")
        let nested = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":["a=1"],"append":["b=2"]}}"#)
        #expect(nested.status == 400)
        #expect(try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":["a=1","a=1"]}}"#).status == 202)
        // No request schema is nullable: an explicit null is refused, never read as an absent key
        // (schemathesis found {"arguments":{"ref":null}} accepted for cleanup).
        func ids() throws -> [String] {
            (try agent.request("GET", "/v1/transactions", as: "reader").json["transactions"] as? [[String: Any]] ?? []).compactMap {
                $0["id"] as? String
            }
        }
        let before = try ids()
        for body in [#"{"operation":"cleanup","arguments":{"ref":null}}"#, #"{"operation":"rollback","idempotencyKey":null}"#] {
            let null = try agent.request("POST", "/v1/transactions", body: body)
            #expect(null.status == 400, "\(body): \(null.body)")
            #expect((null.json["detail"] as? String)?.contains("is null") == true, "\(null.body)")
        }
        #expect(try ids() == before)
    }

    /// Finding 2: more idle connections than the cap (TCP that never starts TLS) neither exhaust the
    /// agent nor lock out an authorised client, and the local socket and metrics listener answer
    /// throughout.
    @Test func idleConnectionFloodIsBoundedAndTimedOut() throws {
        let agent = try AgentBed(extraConfig: "max-connections: 16\nrequest-head-timeout-seconds: 2\nidle-timeout-seconds: 30")
        let flood = Process()
        flood.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        flood.arguments = [
            "-c",
            """
            import socket, sys, time
            held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(60)]
            print("open", flush=True)
            time.sleep(1)
            held[0].settimeout(10)
            closed = held[0].recv(1) == b""
            print("closed-by-server" if closed else "still-open", flush=True)
            time.sleep(20)
            """,
            "\(agent.port)",
        ]
        let out = Pipe()
        flood.standardOutput = out
        try flood.run()
        defer { flood.terminate() }
        let reader = out.fileHandleForReading
        #expect(String(decoding: reader.availableData, as: UTF8.self).contains("open"))
        // While the TLS port is flooded, the other listeners answer at once.
        let started = Date()
        #expect(try Shell.status("curl -sf --max-time 3 http://127.0.0.1:\(agent.metricsPort)/v1/healthz").0 == 0)
        #expect(try Shell.status("curl -sf --max-time 3 --unix-socket \(agent.socket) http://localhost/v1/status").0 == 0)
        #expect(Date().timeIntervalSince(started) < 5)
        // An authorised client gets through once the idle connections time out.
        let status = try agent.request("GET", "/v1/status", as: "reader", extra: "--max-time 30")
        #expect(status.status == 200, "\(status.body)")
        #expect(String(decoding: reader.availableData, as: UTF8.self).contains("closed-by-server"))
        let metrics = try Shell.run("curl -sf http://127.0.0.1:\(agent.metricsPort)/metrics")
        let reached = metrics.split(separator: "\n").first { $0.hasPrefix("apt_layer_connections_limit_reached_total{listener=\"api\"}") }
        #expect(reached.flatMap { Int($0.split(separator: " ").last ?? "") }.map { $0 > 0 } == true, "\(metrics)")
    }

    /// Finding 10: control characters in logged fields are escaped.
    @Test func logFieldsAreEscaped() {
        #expect(JournaldLogHandler.escape("x\ninjected line\r\t\u{1b}[31m") == #"x\ninjected line\r\t\u{1b}[31m"#)
        #expect(JournaldLogHandler.escape("plain") == "plain")
    }

    /// Finding 8: internal refs, short checksum prefixes and layered commits are not targets;
    /// negative indexes never reach the engine.
    @Test func targetsAreBasesOnly() throws {
        let agent = try AgentBed()
        _ = try agent.bed.engine().install(["fixture-app"])
        let layered = try agent.bed.defaultChecksum
        let base = agent.bed.baseChecksum
        let refused = try agent.request("POST", "/v1/transactions", body: #"{"operation":"rebase","arguments":{"ref":"apt-layer/base/\#(base)"}}"#)
        #expect(refused.status == 422 && (refused.json["detail"] as? String)?.contains("internal ref") == true, "\(refused.body)")
        #expect(try agent.request("POST", "/v1/transactions", body: #"{"operation":"pin","arguments":{"index":-1}}"#).status == 422)
        for (target, words) in [(String(base.prefix(1)), "no commit"), (String(base.prefix(7)), "no commit"), (layered, "layered commit")] {
            let reply = try agent.request("POST", "/v1/transactions", body: #"{"operation":"deploy","arguments":{"target":"\#(target)"}}"#)
            let done = try agent.waitForTransaction(try #require(reply.json["id"] as? String))
            #expect(done["state"] as? String == "failed")
            #expect((done["error"] as? String)?.contains(words) == true, "\(target): \(done)")
        }
        let ok = try agent.request("POST", "/v1/transactions", body: #"{"operation":"deploy","arguments":{"target":"\#(base.prefix(8))"}}"#)
        #expect(try agent.waitForTransaction(try #require(ok.json["id"] as? String))["state"] as? String == "succeeded")
    }
}

/// The journal's failures (findings 6 and 7).
@Suite("journal failures")
struct JournalFailureTests {
    /// Finding 7: a corrupt journal is moved aside, a new one started, the event logged and shown
    /// in status and metrics, and the API keeps working.
    @Test func aCorruptJournalIsMovedAsideAndTheAgentServes() throws {
        let agent = try AgentBed()
        let path = Journal.defaultPath(sysroot: agent.bed.sysroot)
        #expect(try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":["before=reset"]}}"#).status == 202)
        Thread.sleep(forTimeInterval: 1)
        agent.stop()
        try Shell.run("head -c 3000 /dev/urandom > \(path) && rm -f \(path)-wal \(path)-shm")
        try agent.start()
        let status = try agent.request("GET", "/v1/status", as: "reader")
        #expect(status.status == 200)
        let reset = (status.json["agent"] as? [String: Any])?["journalReset"] as? [String: Any]
        let movedTo = try #require(reset?["movedTo"] as? String, "\(status.body)")
        #expect(FileManager.default.fileExists(atPath: movedTo))
        #expect(agent.logText.contains("moved aside"))
        #expect(try Shell.run("curl -sf http://127.0.0.1:\(agent.metricsPort)/metrics").contains("apt_layer_journal_reset 1"))
        #expect(try agent.request("GET", "/v1/transactions", as: "reader").status == 200)
        let next = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":["after=reset"]}}"#)
        #expect(try agent.waitForTransaction(try #require(next.json["id"] as? String))["state"] as? String == "succeeded")
    }

    /// Finding 6: a full journal filesystem answers 507, not 400, and starts nothing.
    @Test func aFullJournalFilesystemIs507() throws {
        let bed = try TestBed()
        let directory = "\(bed.root)/journal"
        try Shell.run("mkdir -p \(directory) && mount -t tmpfs -o size=2M tmpfs \(directory)")
        defer { _ = try? Shell.run("umount -l \(directory)") }
        let agent = try AgentBed(bed: bed, extraConfig: "journal: \(directory)/journal.sqlite")
        _ = try? Shell.run("dd if=/dev/zero of=\(directory)/filler bs=4k 2>/dev/null")
        var statuses: [Int] = []
        for n in 0..<40 {
            let reply = try agent.request(
                "POST", "/v1/transactions",
                body: #"{"operation":"kargs","arguments":{"append":["n=\#(n)"]},"idempotencyKey":"\#(String(repeating: "k", count: 190))\#(n)"}"#)
            statuses.append(reply.status)
            if reply.status == 507 {
                #expect(reply.json["type"] as? String == "urn:apt-layer:problem:insufficient-storage")
                break
            }
            if reply.status == 202 { _ = try agent.waitForTransaction(try #require(reply.json["id"] as? String)) }
        }
        #expect(statuses.last == 507, "\(statuses)")
        #expect(!statuses.contains(400))
    }
}
