import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerAgent

/// Hostile input against the real agent (issue 7's findings, each reproduced).
@Suite("hardening", .asRoot, .offPool)
struct HardeningTests {
    /// The BLS entries hold only the keys libostree writes, one per line.
    static func entriesAreClean(_ bed: TestBed) throws -> Bool {
        let text = try Shell.run("cat \(bed.sysroot)/boot/loader/entries/*.conf")
        return text.split(separator: "\n").allSatisfy { line in
            ["title ", "version ", "options ", "linux ", "initrd ", "devicetree "].contains { line.hasPrefix($0) }
        }
    }

    /// Finding 1, applied: words that each pass validation (`RouterTests` refuses the hostile
    /// ones in process) but together pass the kernel's limit fail the transaction; a quoted value
    /// with spaces round-trips; the boot entries stay libostree's and the sysroot loadable.
    @Test func appliedKernelArgumentsStayWithinLimitsAndTheSysrootStaysLoadable() throws {
        let agent = try AgentBed()
        let before = try agent.bed.status
        // Many valid words that together pass the kernel's limit are refused when applied.
        let many = (0..<60).map { "\"k\($0)=\(String(repeating: "v", count: 40))\"" }.joined(separator: ",")
        let tooLong = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":[\#(many)]}}"#)
        let id = try #require(tooLong.json["id"] as? String)
        let done = try agent.waitForTransaction(id)
        #expect(done["state"] as? String == "failed")
        #expect((done["error"] as? String)?.contains("over the kernel's 2048") == true, "\(done)")
        #expect(done["failure"] as? String == "invalid-argument", "\(done)")
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

    /// Finding 5: package files are read once, as regular files, never waited on; over mTLS host
    /// paths are refused before anything runs (relative paths and control characters:
    /// `RouterTests`).
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
        let remote = try agent.request(
            "POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["\#(agent.bed.debs)/fixture-app-1.0.deb"]}}"#)
        #expect(remote.status == 403, "\(remote.body)")
        #expect(try agent.bed.status == before)
        let local = try Shell.status("\(Paths.cli) install -q --agent unix:\(agent.socket) \(agent.bed.debs)/fixture-app-1.0.deb 2>&1")
        #expect(local.0 == 0, "\(local.1)")
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
        let cases = [
            (String(base.prefix(1)), "no commit", "not-found"), (String(base.prefix(7)), "no commit", "not-found"),
            (layered, "layered commit", "invalid-argument"),
        ]
        for (target, words, failure) in cases {
            let reply = try agent.request("POST", "/v1/transactions", body: #"{"operation":"deploy","arguments":{"target":"\#(target)"}}"#)
            let done = try agent.waitForTransaction(try #require(reply.json["id"] as? String))
            #expect(done["state"] as? String == "failed")
            #expect(done["failure"] as? String == failure, "\(target): \(done)")
            #expect((done["error"] as? String)?.contains(words) == true, "\(target): \(done)")
        }
        let ok = try agent.request("POST", "/v1/transactions", body: #"{"operation":"deploy","arguments":{"target":"\#(base.prefix(8))"}}"#)
        #expect(try agent.waitForTransaction(try #require(ok.json["id"] as? String))["state"] as? String == "succeeded")
    }
}

/// The journal's failures (findings 6 and 7).
@Suite("journal failures", .asRoot, .offPool)
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
