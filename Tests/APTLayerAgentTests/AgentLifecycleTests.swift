import APTLayerJournal
import Foundation
import GRDB
import Testing

@testable import APTLayerAgent

/// Crash recovery, the state directory lock, configuration, and the journal's migrations.
@Suite("apt-layerd lifecycle and journal")
struct AgentLifecycleTests {
    /// `after-install` dies with a half-built tree in the repository; `before-deploy` with the
    /// layered commit written but not deployed.
    @Test(arguments: ["after-install", "before-deploy"])
    func killedDuringATransactionRecovers(_ fault: String) throws {
        let agent = try AgentBed(environment: ["APT_LAYER_TEST_FAULT": fault])
        let before = try agent.bed.status
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        #expect(agent.waitForExit(seconds: 60) != nil)  // killed at the fault point with SIGKILL
        #expect(try agent.bed.status == before)
        #expect(fault != "after-install" || !agent.bed.leftovers.isEmpty)
        try agent.start()
        let record = try agent.request("GET", "/v1/transactions/\(id)", as: "reader").json
        #expect(record["state"] as? String == "interrupted")
        #expect(try agent.bed.status == before)
        #expect(agent.bed.leftovers.isEmpty)
        try Shell.run("ostree fsck --repo=\(agent.bed.sysroot)/ostree/repo -q")
        let again = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-conf"]}}"#)
        #expect(try agent.waitForTransaction(try #require(again.json["id"] as? String))["state"] as? String == "succeeded")
    }

    @Test func secondAgentOnTheSameStateDirectoryRefuses() throws {
        let agent = try AgentBed()
        let (code, output) = try Shell.status(
            "\(AgentBed.binary) --config \(agent.configPath) --listen 127.0.0.1:\(agent.port + 1) --metrics-listen 127.0.0.1:\(agent.metricsPort + 1)",
            environment: TestBed.environment)
        #expect(code == 1)
        #expect(output.contains("another apt-layerd"))
        let mode = try FileManager.default.attributesOfItem(atPath: agent.state)[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }

    @Test func configurationMergesDropInsInNameOrderAndFlagsWin() throws {
        let dir = try Shell.run("mktemp -d").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Shell.run("mkdir -p \(dir)/usr.d \(dir)/etc.d")
        try "listen: \"127.0.0.1:1000\"\nroles: { a: reader }\nretention: { max-count: 5 }\n".write(
            toFile: "\(dir)/main.yaml", atomically: true, encoding: .utf8)
        try "listen: \"127.0.0.1:2000\"\nqueue-length: 3\n".write(toFile: "\(dir)/usr.d/10-vendor.yaml", atomically: true, encoding: .utf8)
        try "queue-length: 4\n".write(toFile: "\(dir)/usr.d/20-x.yaml", atomically: true, encoding: .utf8)
        try "queue-length: 5\nroles: { b: admin }\nretention: { max-age-days: 7 }\n".write(
            toFile: "\(dir)/etc.d/20-x.yaml", atomically: true, encoding: .utf8)
        let files = AgentConfiguration.files(main: "\(dir)/main.yaml", dropInDirectories: ["\(dir)/usr.d", "\(dir)/etc.d"])
        #expect(files == ["\(dir)/main.yaml", "\(dir)/usr.d/10-vendor.yaml", "\(dir)/etc.d/20-x.yaml"])
        let config = try AgentConfiguration.load(files: files)
        #expect(config.listen == "127.0.0.1:2000")
        #expect(config.queueLength == 5)
        #expect(config.roles == ["a": .reader, "b": .admin])
        #expect(config.retention.maxCount == 5 && config.retention.maxAgeDays == 7)

        try "listen: nonsense\n".write(toFile: "\(dir)/bad.yaml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try AgentConfiguration.load(files: ["\(dir)/bad.yaml"]) }
        try "roles: { x: superuser }\n".write(toFile: "\(dir)/bad2.yaml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try AgentConfiguration.load(files: ["\(dir)/bad2.yaml"]) }

        let (code, output) = try Shell.status(
            "\(AgentBed.binary) --config \(dir)/main.yaml --drop-in \(dir)/usr.d --drop-in \(dir)/etc.d --queue-length 9 --check-config --tls-cert /nonexistent"
        )
        #expect(code == 1 && output.contains("TLS files"))
        let pki = "\(dir)/pki"
        try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        let checked = try Shell.run(
            "\(AgentBed.binary) --config \(dir)/main.yaml --drop-in \(dir)/usr.d --drop-in \(dir)/etc.d --queue-length 9 --check-config --tls-cert \(pki)/server.crt --tls-key \(pki)/server.key --client-ca \(pki)/ca.crt"
        )
        #expect(checked.contains("queue-length: 9"))
        #expect(checked.contains("127.0.0.1:2000"))
    }

    @Test func journalMigratesFromEmptyAndFromThePreviousSchema() throws {
        let fresh = try Journal(writer: DatabaseQueue())
        #expect(try fresh.appliedMigrations() == ["1-transactions-and-events", "2-requester-role"])

        let old = try DatabaseQueue()
        try Journal.migrator.migrate(old, upTo: "1-transactions-and-events")
        try old.write { db in
            try db.execute(
                sql: "INSERT INTO txn (id, operation, arguments, state, requester, createdAt) VALUES ('t1', 'install', '{}', 'running', 'op', ?)",
                arguments: [Date()])
        }
        let upgraded = try Journal(writer: old)
        #expect(try upgraded.appliedMigrations().count == 2)
        var record = try #require(try upgraded.transaction(id: "t1"))
        #expect(record.role == nil)
        record.role = "operator"
        try upgraded.update(record)
        #expect(try upgraded.transaction(id: "t1")?.role == "operator")
        #expect(try upgraded.recover().map(\.id) == ["t1"])
        #expect(try upgraded.transaction(id: "t1")?.state == "interrupted")
    }

    @Test func journalRetentionByAgeAndCount() throws {
        let journal = try Journal(writer: DatabaseQueue())
        let now = Date()
        for i in 0..<6 {
            var r = TransactionRecord(
                id: "t\(i)", operation: "rollback", arguments: "{}", state: "succeeded", requester: "op",
                createdAt: now.addingTimeInterval(Double(i - 6) * 86400))
            r = try journal.insert(r)
            try journal.append(EventRecord(txnId: r.id, number: 1, kind: "finished", data: "{}"))
        }
        _ = try journal.insert(
            TransactionRecord(
                id: "running", operation: "install", arguments: "{}", state: "running", requester: "op",
                createdAt: now.addingTimeInterval(-30 * 86400)))
        #expect(try journal.applyRetention(maxAge: 3.5 * 86400, maxCount: 100) == 3)
        #expect(try journal.transactions().map(\.id) == ["running", "t5", "t4", "t3"])
        #expect(try journal.applyRetention(maxAge: 100 * 86400, maxCount: 2) == 2)
        #expect(try journal.transactions().map(\.id) == ["running", "t5"])
        #expect(try journal.events(transaction: "t0").isEmpty)
    }
}
