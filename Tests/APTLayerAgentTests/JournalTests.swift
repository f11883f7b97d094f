import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import GRDB
import TestSupport
import Testing

/// The journal's migrations, typed rows, recovery and retention.
@Suite("journal", .tags(.fast))
struct JournalTests {
    @Test func freshJournalHasEveryMigration() throws {
        let fresh = try Journal(writer: DatabaseQueue())
        #expect(
            try fresh.appliedMigrations() == [
                "1-transactions-and-events", "2-requester-role", "3-operation-format-owner", "4-idempotency-per-requester", "5-fleet", "6-telemetry",
                "7-fleet-attempts", "8-failure-kind",
            ])
    }

    /// A failed transaction's kind is journaled beside its error; a kind a newer writer stored
    /// that this version does not know reads as unknown (nil), not as an unreadable row.
    @Test func failureKindsAreJournaled() throws {
        let queue = try DatabaseQueue()
        let journal = try Journal(writer: queue)
        for (n, kind) in FailureKind.allCases.enumerated() {
            var record = try journal.insert(TransactionRecord(id: "f\(n)", operation: .rollback, requester: "test"))
            try record.move(to: .running)
            try record.move(to: .failed)
            record.error = "why"
            record.failure = kind
            try journal.update(record)
            #expect(try journal.transaction(id: "f\(n)")?.failure == kind)
        }
        try queue.write { try $0.execute(sql: "UPDATE txn SET failure = 'from-the-future' WHERE id = 'f0'") }
        let unknown = try #require(try journal.transaction(id: "f0"))
        #expect(unknown.failure == nil && unknown.error == "why")
        #expect(FailureKind(EngineError(.refused, "not enough space on /boot", underlying: POSIXError(.ENOSPC))) == .outOfSpace)
        #expect(FailureKind(EngineError(.cancelled, "cancelled")) == nil)
        #expect(FailureKind(EngineError(.packageFailed, "postinst failed")) == .packageFailed)
    }

    /// Rows exactly as the agent before typed operations wrote them (schema 2, the API's canonical
    /// argument JSON, event data without `kind`) decode into typed operations and events.
    @Test func rowsOfThePreviousFormatDecode() throws {
        let old = try DatabaseQueue()
        try Journal.migrator.migrate(old, upTo: "2-requester-role")
        let rows: [(String, String, String, String)] = [
            ("t1", "install", #"{"allowKernel":true,"dryRun":true,"idempotent":true,"packages":["fixture-app","/tmp/x.deb"]}"#, "succeeded"),
            ("t2", "uninstall", #"{"all":true,"packages":[]}"#, "failed"),
            ("t3", "kargs", #"{"append":["x=1"],"delete":["quiet"]}"#, "succeeded"),
            ("t4", "pin", #"{"index":1}"#, "cancelled"),
            ("t5", "cleanup", #"{"pending":true}"#, "succeeded"),
            ("t6", "deploy", #"{"target":"1.0"}"#, "succeeded"),
            ("t7", "rollback", "{}", "running"),
            ("t8", "upgrade", #"{"check":true}"#, "queued"),
        ]
        try old.write { db in
            for (id, operation, arguments, state) in rows {
                try db.execute(
                    sql:
                        "INSERT INTO txn (id, operation, arguments, state, requester, role, createdAt) VALUES (?, ?, ?, ?, 'operator', 'operator', ?)",
                    arguments: [id, operation, arguments, state, Date()])
            }
            for (n, (kind, data)) in [
                ("task-begin", #"{"task":"Resolving packages"}"#), ("percent", #"{"done":1,"item":"fixture-lib","percent":25,"total":4}"#),
                ("message", #"{"text":"a note"}"#), ("task-end", #"{"task":"Resolving packages"}"#),
                ("finished", #"{"changed":true,"state":"succeeded","success":true}"#),
            ].enumerated() {
                try db.execute(
                    sql: "INSERT INTO event (txnId, number, kind, data, at) VALUES ('t1', ?, ?, ?, ?)", arguments: [n + 1, kind, data, Date()])
            }
        }
        let journal = try Journal(writer: old)
        #expect(try journal.appliedMigrations().count == 8)
        #expect(try journal.transactions(limit: 100).allSatisfy { $0.failure == nil })
        let byID = Dictionary(uniqueKeysWithValues: try journal.transactions(limit: 100).map { ($0.id, $0) })
        #expect(
            byID["t1"]?.operation
                == .install(packages: ["fixture-app", "/tmp/x.deb"], flags: .init(idempotent: true, dryRun: true, allowKernel: true)))
        #expect(byID["t2"]?.operation == .uninstall(packages: [], all: true, flags: .init()))
        #expect(byID["t3"]?.operation == .kargs(.init(append: ["x=1"], delete: ["quiet"])))
        #expect(byID["t4"]?.operation == .pin(index: 1))
        #expect(byID["t5"]?.operation == .cleanup(pending: true, rollback: false))
        #expect(byID["t6"]?.operation == .deploy(target: "1.0", flags: .init()))
        #expect(byID["t1"]?.state == .succeeded && byID["t4"]?.state == .cancelled)
        #expect(
            try journal.events(transaction: "t1").map(\.event) == [
                .taskBegin(task: "Resolving packages"), .percent(percent: 25, done: 1, total: 4, item: "fixture-lib"), .message(text: "a note"),
                .taskEnd(task: "Resolving packages"), .finished(state: .succeeded, error: nil, changed: true),
            ])
        // An old row has no owner: its process is gone, so recovery finishes it.
        #expect(try journal.recover().map(\.id) == ["t7"])
        #expect(try journal.transaction(id: "t7")?.state == .interrupted)
        #expect(try journal.transaction(id: "t8")?.state == .cancelled)
        // Rewritten rows take the current format; the old ones keep theirs until then.
        var t6 = try #require(byID["t6"])
        t6.summary = "rewritten"
        try journal.update(t6)
        let formats = try old.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT id, format FROM txn").map { ($0[0] as String, $0[1] as Int) })
        }
        #expect(formats["t6"] == HostOperation.format && formats["t1"] == 1)
    }

    @Test func aRowFromANewerFormatIsRefusedWithItsID() throws {
        let queue = try DatabaseQueue()
        let journal = try Journal(writer: queue)
        try queue.write { db in
            try db.execute(
                sql:
                    "INSERT INTO txn (id, operation, arguments, state, requester, createdAt, format) VALUES ('future', 'install', '{}', 'succeeded', 'x', ?, 99)",
                arguments: [Date()])
        }
        let error = try #require(throws: JournalError.self) { try journal.transaction(id: "future") }
        #expect("\(error)".contains("future") && "\(error)".contains("format 99"))
    }

    /// A live process's rows survive another process's recovery; a dead one's do not, nor do
    /// those whose pid now names another program (a reused pid).
    @Test func recoveryLeavesRowsOfLiveProcessesAlone() throws {
        let journal = try Journal(writer: DatabaseQueue())
        // A live owner is an apt-layer program: a copy of sleep under such a name stands in.
        let directory = try Shell.run("mktemp -d").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: "\(directory)/apt-layer-live")
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "\(directory)/apt-layer-live")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        let stranger = Process()
        stranger.executableURL = URL(fileURLWithPath: "/bin/sleep")
        stranger.arguments = ["30"]
        try stranger.run()
        defer { stranger.terminate() }
        var reused = TransactionRecord(
            id: "reused", operation: .rollback, requester: "local:uid:0", pid: stranger.processIdentifier, bootID: Journal.bootID)
        try reused.move(to: .running)
        _ = try journal.insert(reused)
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        var live = TransactionRecord(
            id: "live", operation: .rollback, requester: "local:uid:0", pid: sleeper.processIdentifier, bootID: Journal.bootID)
        try live.move(to: .running)
        _ = try journal.insert(live)
        var gone = TransactionRecord(id: "gone", operation: .rollback, requester: "local:uid:0", pid: dead.processIdentifier, bootID: Journal.bootID)
        try gone.move(to: .running)
        _ = try journal.insert(gone)
        var otherBoot = TransactionRecord(id: "other-boot", operation: .finalize, requester: "x", pid: sleeper.processIdentifier, bootID: "another")
        _ = try journal.insert(otherBoot)
        otherBoot = try #require(try journal.transaction(id: "other-boot"))
        #expect(try journal.recover().map(\.id).sorted() == ["gone", "reused"])
        #expect(try journal.transaction(id: "live")?.state == .running)
        #expect(try journal.transaction(id: "gone")?.state == .interrupted)
        #expect(try journal.transaction(id: "other-boot")?.state == .cancelled)
    }

    /// A transaction whose owner died after it journaled the commit it was deploying is
    /// `succeeded` when the sysroot has that deployment, `interrupted` otherwise; either way its
    /// events end with `finished`, and so do a finished row's that lost it.
    @Test func recoveryReconcilesWithTheSysrootAndEndsEveryStream() throws {
        let journal = try Journal(writer: DatabaseQueue())
        for (id, checksum) in [("deployed", "aaaa"), ("not-deployed", "bbbb"), ("no-checksum", nil)] as [(String, String?)] {
            var r = TransactionRecord(id: id, operation: .install(packages: ["x"], flags: .init()), requester: "op", pid: 999_999, bootID: "gone")
            try r.move(to: .running)
            _ = try journal.insert(r)
            try journal.append(EventRecord(txnId: id, number: 1, event: .taskBegin(task: "Deploying")))
            if let checksum { try journal.recordIntendedResult(transaction: id, checksum: checksum) }
        }
        var done = TransactionRecord(id: "done-without-finished", operation: .rollback, requester: "op", pid: 999_999, bootID: "gone")
        try done.move(to: .running)
        try done.move(to: .succeeded)
        _ = try journal.insert(done)
        #expect(try journal.recover(defaultChecksum: { "aaaa" }).map(\.id).sorted() == ["no-checksum", "not-deployed"])
        #expect(try journal.transaction(id: "deployed")?.state == .succeeded)
        #expect(try journal.transaction(id: "deployed")?.resultChecksum == "aaaa")
        #expect(try journal.transaction(id: "not-deployed")?.state == .interrupted)
        for id in ["deployed", "not-deployed", "no-checksum", "done-without-finished"] {
            let last = try #require(try journal.events(transaction: id).last)
            guard case .finished(let state, _, _) = last.event else { Issue.record("\(id) does not end with finished"); continue }
            #expect(state == (try journal.transaction(id: id)?.state))
        }
        // A second recovery adds nothing.
        _ = try journal.recover(defaultChecksum: { "aaaa" })
        #expect(try journal.events(transaction: "deployed").count == 2)
    }

    @Test func retentionByAgeAndCount() throws {
        let journal = try Journal(writer: DatabaseQueue())
        let now = Date()
        for i in 0..<6 {
            var r = TransactionRecord(id: "t\(i)", operation: .rollback, requester: "op", createdAt: now.addingTimeInterval(Double(i - 6) * 86400))
            try r.move(to: .running)
            try r.move(to: .succeeded)
            r = try journal.insert(r)
            try journal.append(EventRecord(txnId: r.id, number: 1, event: .finished(state: .succeeded, error: nil, changed: true)))
        }
        var running = TransactionRecord(id: "running", operation: .rollback, requester: "op", createdAt: now.addingTimeInterval(-30 * 86400))
        try running.move(to: .running)
        _ = try journal.insert(running)
        #expect(try journal.applyRetention(maxAge: 3.5 * 86400, maxCount: 100) == 3)
        #expect(try journal.transactions().map(\.id) == ["running", "t5", "t4", "t3"])
        #expect(try journal.applyRetention(maxAge: 100 * 86400, maxCount: 2) == 2)
        #expect(try journal.transactions().map(\.id) == ["running", "t5"])
        #expect(try journal.events(transaction: "t0").isEmpty)
    }

    @Test func defaultPathFollowsTheSysroot() {
        #expect(Journal.defaultPath(sysroot: "/") == "/var/lib/apt-layer/journal.sqlite")
        #expect(Journal.defaultPath(sysroot: "/srv/image/") == "/srv/image/ostree/apt-layer/journal.sqlite")
    }
}
