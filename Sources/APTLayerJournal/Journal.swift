import Foundation
import GRDB

/// The durable SQLite journal of transactions and their events.
///
/// WAL with `synchronous=FULL`: a write that records a state change is on disk when the call
/// returns, so the API can answer after it.
public final class Journal: Sendable {
    let writer: any DatabaseWriter

    /// Opens (creating and migrating) the journal at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        writer = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(writer)
    }

    /// Wraps an already opened database (tests use an in-memory queue) and migrates it.
    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        try Self.migrator.migrate(writer)
    }

    /// The numbered migrations. GRDB runs each pending one in its own SQLite transaction at open.
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1-transactions-and-events") { db in
            try db.create(table: "txn") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("id", .text).notNull().unique()
                t.column("operation", .text).notNull()
                t.column("arguments", .text).notNull()
                t.column("state", .text).notNull().indexed()
                t.column("requester", .text).notNull()
                t.column("idempotencyKey", .text).unique()
                t.column("createdAt", .datetime).notNull()
                t.column("startedAt", .datetime)
                t.column("finishedAt", .datetime)
                t.column("changed", .boolean)
                t.column("summary", .text)
                t.column("resultChecksum", .text)
                t.column("error", .text)
            }
            try db.create(table: "event") { t in
                t.column("txnId", .text).notNull().references("txn", column: "id", onDelete: .cascade)
                t.column("number", .integer).notNull()
                t.column("kind", .text).notNull()
                t.column("data", .text).notNull()
                t.column("at", .datetime).notNull()
                t.primaryKey(["txnId", "number"])
            }
        }
        migrator.registerMigration("2-requester-role") { db in
            try db.alter(table: "txn") { t in t.add(column: "role", .text) }
            try db.create(index: "txn_createdAt", on: "txn", columns: ["createdAt"])
        }
        return migrator
    }

    /// Names of the migrations applied to this journal, in order.
    public func appliedMigrations() throws -> [String] {
        try writer.read { try Self.migrator.appliedIdentifiers($0) }.sorted()
    }

    /// Records a new transaction; returns it with its `seq`.
    public func insert(_ record: TransactionRecord) throws -> TransactionRecord {
        try writer.write { db in
            var record = record
            try record.insert(db)
            return record
        }
    }

    /// Records a state change.
    public func update(_ record: TransactionRecord) throws {
        try writer.write { db in try record.update(db) }
    }

    /// One transaction by id.
    public func transaction(id: String) throws -> TransactionRecord? {
        try writer.read { db in try TransactionRecord.filter(Column("id") == id).fetchOne(db) }
    }

    /// The transaction that used `key`, if any.
    public func transaction(idempotencyKey key: String) throws -> TransactionRecord? {
        try writer.read { db in try TransactionRecord.filter(Column("idempotencyKey") == key).fetchOne(db) }
    }

    /// Newest first; `before` is a `seq` cursor from a previous page.
    public func transactions(state: String? = nil, operation: String? = nil, since: Date? = nil, before: Int64? = nil, limit: Int = 50) throws
        -> [TransactionRecord]
    {
        try writer.read { db in
            var request = TransactionRecord.order(Column("seq").desc)
            if let state { request = request.filter(Column("state") == state) }
            if let operation { request = request.filter(Column("operation") == operation) }
            if let since { request = request.filter(Column("createdAt") >= since) }
            if let before { request = request.filter(Column("seq") < before) }
            return try request.limit(limit).fetchAll(db)
        }
    }

    /// Appends an event.
    public func append(_ event: EventRecord) throws {
        try writer.write { db in try event.insert(db) }
    }

    /// Events of a transaction with `number > after`, in order.
    public func events(transaction id: String, after: Int = 0) throws -> [EventRecord] {
        try writer.read { db in
            try EventRecord.filter(Column("txnId") == id && Column("number") > after).order(Column("number")).fetchAll(db)
        }
    }

    /// Crash recovery: transactions a killed agent left `running` become `interrupted`, queued ones
    /// `cancelled`. Returns the interrupted ones.
    public func recover(now: Date = Date()) throws -> [TransactionRecord] {
        try writer.write { db in
            let running = try TransactionRecord.filter(Column("state") == "running").fetchAll(db)
            for var record in running {
                record.state = "interrupted"
                record.finishedAt = now
                record.error = "the agent stopped while the transaction ran; the sysroot was left as its last completed write"
                try record.update(db)
            }
            for var record in try TransactionRecord.filter(Column("state") == "queued").fetchAll(db) {
                record.state = "cancelled"
                record.finishedAt = now
                record.error = "the agent restarted before the transaction ran"
                try record.update(db)
            }
            return running
        }
    }

    /// Deletes finished transactions older than `maxAge` and all but the newest `maxCount`.
    /// Returns how many were deleted.
    @discardableResult
    public func applyRetention(maxAge: TimeInterval, maxCount: Int, now: Date = Date()) throws -> Int {
        try writer.write { db in
            let finished = ["succeeded", "failed", "cancelled", "interrupted"]
            var deleted = try TransactionRecord.filter(finished.contains(Column("state")) && Column("createdAt") < now.addingTimeInterval(-maxAge))
                .deleteAll(db)
            let keep = try TransactionRecord.order(Column("seq").desc).limit(maxCount).fetchAll(db).compactMap(\.seq)
            if let oldestKept = keep.last, keep.count == maxCount {
                deleted += try TransactionRecord.filter(finished.contains(Column("state")) && Column("seq") < oldestKept).deleteAll(db)
            }
            return deleted
        }
    }
}
