import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport
import Testing

/// Issue 26's findings against the real agent, each reproduced as it was found.
@Suite("reliability", .serialized, .asRoot, .offPool)
struct ReliabilityTests {
    /// `curl` over mTLS as `identity`, without the URL.
    static func curl(_ agent: AgentBed, as identity: String = "reader") -> String {
        "curl -sS --cacert \(agent.pki)/ca.crt --cert \(agent.pki)/\(identity).crt --key \(agent.pki)/\(identity).key"
    }

    /// Finding 1: event-stream subscribers that leave while a transaction emits froze the whole
    /// agent. Three rounds of 60 subscribers, each dropped after 0–600 ms, during an install; the
    /// health endpoint answers within two seconds throughout, and every transaction finishes.
    @Test func subscribersLeavingDuringATransactionDoNotFreezeTheAgent() throws {
        let agent = try AgentBed()
        defer { agent.stop() }
        for round in 0..<3 {
            let packages = round % 2 == 0 ? #"["fixture-app","fixture-vardir"]"# : #"["fixture-user","fixture-conf"]"#
            let operation =
                round == 2
                ? #"{"operation":"uninstall","arguments":{"all":true}}"# : #"{"operation":"install","arguments":{"packages":\#(packages)}}"#
            let reply = try agent.request("POST", "/v1/transactions", body: operation)
            let id = try #require(reply.json["id"] as? String, "\(reply.body)")
            let (_, output) = try Shell.status(
                """
                for i in $(seq 60); do
                  ms=$((RANDOM % 600)); t=$(printf '0.%03d' $ms); [ $ms -eq 0 ] && t=0.001
                  \(Self.curl(agent)) -N --max-time $t 'https://127.0.0.1:\(agent.port)/v1/transactions/\(id)/events' >/dev/null 2>&1 &
                done
                for i in $(seq 40); do
                  curl -s --max-time 2 http://127.0.0.1:\(agent.metricsPort)/v1/healthz >/dev/null || echo "healthz failed"
                  sleep 0.05
                done
                wait
                """)
            #expect(!output.contains("healthz failed"), "round \(round): \(output)")
            let done = try agent.waitForTransaction(id, seconds: 60)
            #expect(done["state"] as? String == "succeeded", "round \(round): \(done)")
        }
        #expect(try Shell.status("curl -s --max-time 2 http://127.0.0.1:\(agent.metricsPort)/v1/healthz").0 == 0)
    }

    /// The agent's zombie children.
    static func zombies(of pid: Int32) throws -> Int {
        let output = try Shell.run("ps --ppid \(pid) -o stat= || true")
        return output.split(separator: "\n").filter { $0.hasPrefix("Z") }.count
    }

    /// Finding 2: every deployment write left a zombie (libostree's freeze watchdog daemonizes and
    /// nobody waited for its first child). Over 100 transactions that write deployments (kernel
    /// arguments, rollbacks, an install) the agent's zombie count stays flat.
    @Test func deploymentWritesLeaveNoZombies() throws {
        let agent = try AgentBed()
        defer { agent.stop() }
        let pid = try #require(agent.process?.processIdentifier)
        let before = try Self.zombies(of: pid)
        var operations = [#"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#]
        for i in 0..<20 { operations.append(#"{"operation":"kargs","arguments":{"append":["z\#(i)=1"]}}"#) }
        let total = Int(ProcessInfo.processInfo.environment["APT_LAYER_TEST_ZOMBIE_OPS"] ?? "") ?? 100
        while operations.count < total { operations.append(#"{"operation":"rollback"}"#) }
        for operation in operations {
            let reply = try agent.request("POST", "/v1/transactions", as: "admin", body: operation)
            let id = try #require(reply.json["id"] as? String, "\(reply.body)")
            let done = try agent.waitForTransaction(id, seconds: 60)
            #expect(done["state"] as? String == "succeeded", "\(operation): \(done)")
        }
        let children = try Shell.run("ps --ppid \(pid) -o pid=,stat=,comm= | head -5")
        #expect(try Self.zombies(of: pid) <= before, "zombies of apt-layerd after \(operations.count) deployment writes: \(children)")
    }

    /// Finding 5: a journal filesystem that filled during a transaction left an applied change
    /// journaled `running`. Paused at every engine step, the journal's filesystem is filled, the
    /// transaction goes on; once space is back, the journal and the sysroot agree: `succeeded`
    /// exactly when the default deployment changed, else `failed` saying nothing changed.
    @Test(arguments: ["after-checkout", "after-install", "after-commit", "before-deploy", "after-new-default", "after-deploy"])
    func fullJournalFilesystemAtAStep(_ step: String) throws {
        let bed = try TestBed()
        let state = "\(bed.fixtures)/state"
        let pause = "\(bed.fixtures)/pause"
        try Shell.run("mkdir -p \(state) \(pause) && mount -t tmpfs -o size=4M tmpfs \(state)")
        defer { _ = try? Shell.run("umount -l \(state)") }
        let agent = try AgentBed(
            bed: bed, extraConfig: "journal: \(state)/journal.sqlite", environment: ["APT_LAYER_TEST_PAUSE": step, "APT_LAYER_TEST_PAUSE_DIR": pause])
        defer { agent.stop() }
        let before = try bed.defaultChecksum
        let reply = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#)
        let id = try #require(reply.json["id"] as? String, "\(reply.body)")
        try Shell.run("for i in $(seq 600); do [ -e \(pause)/\(step).paused ] && break; sleep 0.1; done; [ -e \(pause)/\(step).paused ]")
        // Fill the journal's filesystem, then let the engine go on.
        _ = try Shell.status("dd if=/dev/zero of=\(state)/filler bs=64k 2>/dev/null; touch \(pause)/\(step).go")
        // The manager answers the outcome from memory while the journal cannot take it.
        var record: [String: Any] = [:]
        for _ in 0..<600 {
            record = try agent.request("GET", "/v1/transactions/\(id)", as: "reader").json
            if let s = record["state"] as? String, s != "running" { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        try Shell.run("rm -f \(state)/filler")
        let changed = try bed.defaultChecksum != before
        #expect(record["state"] as? String == (changed ? "succeeded" : "failed"), "\(step): \(record)")
        if !changed { #expect((record["error"] as? String)?.contains("nothing was changed") == true, "\(step): \(record)") }
        // The journal itself catches up (the manager writes again every two seconds)...
        let journal = try Journal(path: "\(state)/journal.sqlite")
        var journaled: TransactionState?
        for _ in 0..<100 {
            journaled = try journal.transaction(id: id)?.state
            if journaled?.rawValue == record["state"] as? String { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(journaled?.rawValue == record["state"] as? String, "\(step): the journal says \(String(describing: journaled))")
        // ...and a restarted agent agrees.
        agent.stop()
        try agent.start()
        let reread = try agent.request("GET", "/v1/transactions/\(id)", as: "reader").json
        #expect(reread["state"] as? String == record["state"] as? String, "\(step): after a restart \(reread)")
        let events = try agent.request("GET", "/v1/transactions/\(id)/events", as: "reader", extra: "--max-time 10")
        #expect(events.body.contains("\"kind\":\"finished\""), "\(step): \(events.body.suffix(400))")
    }

    /// Finding 6: one unauthenticated source holding 1,100 connections (refilled as they close)
    /// locked authorised clients out. With a flood from 127.0.0.2, every authorised request from
    /// 127.0.0.1 is answered within a second.
    @Test func oneSourceFloodingConnectionsDoesNotLockOthersOut() throws {
        let agent = try AgentBed()
        defer { agent.stop() }
        let flood = "\(Paths.fixtures)/harness/flood.py"
        let (_, output) = try Shell.status(
            """
            python3 \(flood) 127.0.0.2 \(agent.port) 1100 25 & f=$!
            sleep 3
            for i in $(seq 30); do
              \(Self.curl(agent)) -o /dev/null --max-time 10 -w 'served %{http_code} %{time_total}\\n' https://127.0.0.1:\(agent.port)/v1/status
              sleep 0.4
            done
            kill $f; wait $f 2>/dev/null
            curl -s http://127.0.0.1:\(agent.metricsPort)/metrics | grep '^apt_layer_connections_peer_refused_total'
            """)
        let served = output.split(separator: "\n").filter { $0.hasPrefix("served ") }.map { $0.split(separator: " ") }
        #expect(served.count == 30, "\(output)")
        for line in served {
            #expect(line[1] == "200", "\(output)")
            #expect((Double(line[2]) ?? 99) < 1.0, "an authorised request took \(line[2]) s under the flood")
        }
        let refused = output.split(separator: "\n").first { $0.hasPrefix("apt_layer_connections_peer_refused_total") }
        #expect((refused?.split(separator: " ").last.flatMap { Int($0) } ?? 0) > 1000, "\(output)")
    }
}
