import APTLayerModel
import Foundation
import GRDB

/// What a journal write changed, as far as a status report is concerned.
public enum JournalChange: Sendable {
    /// A transaction changed state (queued, running, finished).
    case transaction(TransactionRecord)
    /// The update driver moved or changed its record.
    case driver(DriverRecord)
    /// A policy was accepted.
    case policy
    /// The denylist changed.
    case denylist
    /// Nothing changed; the heartbeat is due.
    case heartbeat
    /// The deployments changed outside a journaled transaction (agent start, a local run).
    case deployments
}

/// Sees every journal write that changes what a status report shows, inside that write's SQLite
/// transaction: what it writes (an outbox row) commits or rolls back together with the change.
public protocol JournalObserver: Sendable {
    /// Called inside the write; must not throw (telemetry never blocks a state change) and must
    /// not call back into the ``Journal`` (the write holds its connection).
    func journal(_ db: Database, changed: JournalChange)
}

/// One status report waiting to be sent. Table `telemetry_outbox`; `seq` is strictly increasing
/// (AUTOINCREMENT), so receivers can tell duplicates (delivery is at least once).
public struct OutboxRecord: Sendable, Equatable, Codable, FetchableRecord, MutablePersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "telemetry_outbox"
    public var seq: Int64?
    public var createdAt: Date
    /// The report's JSON document.
    public var body: Data

    public init(createdAt: Date, body: Data) {
        self.createdAt = createdAt
        self.body = body
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}

/// A report the collector refused for good (a 4xx other than 408/413/429). Table
/// `telemetry_dead_letter`, the newest 1000 kept, for an operator to look at.
public struct DeadLetterRecord: Sendable, Equatable, Codable, FetchableRecord, MutablePersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "telemetry_dead_letter"
    public var seq: Int64?
    public var reportSeq: Int64
    public var createdAt: Date
    public var failedAt: Date
    /// The collector's HTTP status.
    public var status: Int
    /// The start of the collector's answer.
    public var message: String
    public var body: Data

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}

/// The outbox's size, for metrics and the backlog alert.
public struct OutboxStats: Sendable, Equatable {
    /// Reports waiting.
    public var count: Int
    /// When the oldest waiting report was written.
    public var oldest: Date?

    public init(count: Int, oldest: Date?) {
        self.count = count
        self.oldest = oldest
    }
}

/// Durable counters (table `counter`): they survive restarts and reboots, so an event that
/// happens just before a reboot (a failed health check) is still counted by the next scrape.
public enum JournalCounter: String, Sendable, CaseIterable {
    case finalizations
    case healthFailures = "health-failures"
    case rollbacks
    case deployFailures = "deploy-failures"
    /// Boots the boot menu's counter sent back to the previous deployment (handled at agent start).
    case bootFallbacks = "boot-fallbacks"
    case rebootSlotWaits = "reboot-slot-waits"
    case reportsSent = "reports-sent"
    case reportsDropped = "reports-dropped"
    case reportsDeadLettered = "reports-dead-lettered"

    /// The counters a driver move adds one to.
    static func moved(from: UpdateState, to: UpdateState) -> [JournalCounter] {
        var counters: [JournalCounter] = []
        if to == .finalizing { counters.append(.finalizations) }
        if from == .verifying && to == .rollingBack { counters.append(.healthFailures) }
        if from == .rollingBack && to == .rebooting { counters.append(.rollbacks) }
        if [.staging, .finalizing].contains(from) && to == .failed { counters.append(.deployFailures) }
        return counters
    }
}

extension Journal {
    static func registerTelemetryMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("6-telemetry") { db in
            try db.create(table: "telemetry_outbox") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("createdAt", .datetime).notNull()
                t.column("body", .blob).notNull()
            }
            try db.create(table: "telemetry_dead_letter") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("reportSeq", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("failedAt", .datetime).notNull()
                t.column("status", .integer).notNull()
                t.column("message", .text).notNull()
                t.column("body", .blob).notNull()
            }
            try db.create(table: "telemetry_state") { t in
                t.primaryKey("id", .integer)
                t.column("lastHash", .text)
                t.column("lastReportAt", .datetime)
            }
            try db.create(table: "counter") { t in
                t.primaryKey("name", .text)
                t.column("value", .integer).notNull()
            }
        }
    }

    /// Installs the observer every state-changing write calls (nil removes it).
    public func observe(_ observer: (any JournalObserver)?) {
        observerSlot.withLock { $0 = observer }
    }

    /// Calls the observer inside a write.
    func notify(_ db: Database, _ change: JournalChange) {
        observerSlot.withLock { $0 }?.journal(db, changed: change)
    }

    /// A write that changes nothing but lets the observer report (the heartbeat, new deployments).
    public func report(_ change: JournalChange) throws {
        try writer.write { db in notify(db, change) }
    }

    /// Adds to a durable counter inside a write.
    public static func increment(_ db: Database, _ counter: JournalCounter, by amount: Int = 1) throws {
        try db.execute(
            sql: "INSERT INTO counter (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            arguments: [counter.rawValue, amount])
    }

    /// Adds to a durable counter.
    public func increment(_ counter: JournalCounter, by amount: Int = 1) throws {
        try writer.write { db in try Self.increment(db, counter, by: amount) }
    }

    /// Every durable counter (absent ones are zero).
    public func counters() throws -> [JournalCounter: Int64] {
        let rows = try writer.read { db in try Row.fetchAll(db, sql: "SELECT name, value FROM counter") }
        var result = Dictionary(uniqueKeysWithValues: JournalCounter.allCases.map { ($0, Int64(0)) })
        for row in rows {
            if let counter = JournalCounter(rawValue: row["name"]) { result[counter] = row["value"] }
        }
        return result
    }

    /// The hash and time of the last report written, inside a write.
    public static func lastReport(_ db: Database) throws -> (hash: String?, at: Date?) {
        let row = try Row.fetchOne(db, sql: "SELECT lastHash, lastReportAt FROM telemetry_state WHERE id = 1")
        return (row?["lastHash"], row?["lastReportAt"])
    }

    /// The time of the last report written.
    public func lastReportAt() throws -> Date? {
        try writer.read { db in try Self.lastReport(db).at }
    }

    /// Writes a report to the outbox inside a write, and remembers its hash; when the outbox holds
    /// more than `maxRows`, the oldest reports are dropped and counted.
    public static func enqueue(_ db: Database, report body: Data, hash: String, at: Date, maxRows: Int) throws {
        var row = OutboxRecord(createdAt: at, body: body)
        try row.insert(db)
        try db.execute(
            sql: """
                INSERT INTO telemetry_state (id, lastHash, lastReportAt) VALUES (1, ?, ?)
                ON CONFLICT(id) DO UPDATE SET lastHash = excluded.lastHash, lastReportAt = excluded.lastReportAt
                """, arguments: [hash, at.journalText])
        let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM telemetry_outbox") ?? 0
        if count > maxRows {
            let excess = count - maxRows
            try db.execute(
                sql: "DELETE FROM telemetry_outbox WHERE seq IN (SELECT seq FROM telemetry_outbox ORDER BY seq LIMIT ?)", arguments: [excess])
            try increment(db, .reportsDropped, by: excess)
        }
    }

    /// Writes a report to the outbox on its own (``enqueue(_:report:hash:at:maxRows:)`` outside a
    /// state change: tests and benchmarks).
    public func enqueue(report body: Data, hash: String, at: Date, maxRows: Int) throws {
        try writer.write { db in try Self.enqueue(db, report: body, hash: hash, at: at, maxRows: maxRows) }
    }

    /// The oldest waiting reports.
    public func outbox(limit: Int) throws -> [OutboxRecord] {
        try writer.read { db in try OutboxRecord.order(Column("seq")).limit(limit).fetchAll(db) }
    }

    /// Removes reports the collector accepted and counts them.
    public func outboxSent(_ seqs: [Int64]) throws {
        try writer.write { db in
            let deleted = try OutboxRecord.deleteAll(db, keys: seqs)
            try Self.increment(db, .reportsSent, by: deleted)
        }
    }

    /// Moves reports the collector refused for good to the dead-letter table and counts them.
    public func deadLetter(_ reports: [OutboxRecord], status: Int, message: String, at: Date = Date()) throws {
        try writer.write { db in
            var moved = 0
            for report in reports {
                guard let seq = report.seq, try OutboxRecord.deleteOne(db, key: seq) else { continue }
                var letter = DeadLetterRecord(
                    reportSeq: seq, createdAt: report.createdAt, failedAt: at, status: status, message: String(message.prefix(500)),
                    body: report.body)
                try letter.insert(db)
                moved += 1
            }
            try db.execute(
                sql: "DELETE FROM telemetry_dead_letter WHERE seq <= (SELECT MAX(seq) FROM telemetry_dead_letter) - 1000")
            try Self.increment(db, .reportsDeadLettered, by: moved)
        }
    }

    /// The dead-lettered reports, newest first.
    public func deadLetters(limit: Int = 100) throws -> [DeadLetterRecord] {
        try writer.read { db in try DeadLetterRecord.order(Column("seq").desc).limit(limit).fetchAll(db) }
    }

    /// How many reports wait, and since when.
    public func outboxStats() throws -> OutboxStats {
        try writer.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, MIN(createdAt) AS oldest FROM telemetry_outbox")
            return OutboxStats(count: row?["n"] ?? 0, oldest: row?["oldest"])
        }
    }
}
