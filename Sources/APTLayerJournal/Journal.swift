import APTLayerModel
import Dispatch
import Foundation
import GRDB
import Glibc
import Synchronization

/// The durable SQLite journal of transactions and their events.
///
/// WAL with `synchronous=FULL`: a write that records a state change is on disk when the call
/// returns, so the API can answer after it. Methods block; async callers use ``off(_:)``, which
/// runs them on the journal's own queue instead of the cooperative pool.
///
/// One journal per sysroot (``defaultPath(sysroot:)``), shared by the agent and local CLI runs:
/// SQLite serialises their writes (WAL, 5 s busy timeout) and each queued or running row names
/// its owning process, so recovery only touches rows whose process is gone.
public final class Journal: Sendable {
    let writer: any DatabaseWriter
    /// The observer state-changing writes call (``observe(_:)``).
    let observerSlot = Mutex<(any JournalObserver)?>(nil)
    private let queue = DispatchQueue(label: "apt-layer.journal", attributes: .concurrent)

    /// Where a sysroot's journal lives: `/var/lib/apt-layer/journal.sqlite` for the booted host
    /// (`/`), `SYSROOT/ostree/apt-layer/journal.sqlite` for any other sysroot (an image being built
    /// with `--sysroot` keeps its history with it).
    public static func defaultPath(sysroot: String) -> String {
        let trimmed = sysroot.count > 1 && sysroot.hasSuffix("/") ? String(sysroot.dropLast()) : sysroot
        return trimmed == "/" ? "/var/lib/apt-layer/journal.sqlite" : "\(trimmed)/\(Layout.stateDirectory)/journal.sqlite"
    }

    /// Opens (creating its directory, 0700) the journal at `path`.
    public convenience init(creatingDirectoryFor path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        try self.init(path: path)
    }

    /// A journal file that could not be read and was moved aside for a new one.
    public struct Reset: Sendable, Equatable {
        /// When it happened.
        public var at: Date
        /// Where the unreadable file went.
        public var movedTo: String
        /// SQLite's reason.
        public var reason: String
    }

    /// Opens the journal at `path`; when SQLite says the file is not a database or is corrupt
    /// (truncated, overwritten), moves it and its WAL aside as `…corrupt-TIMESTAMP` and starts a new
    /// one, so that the agent keeps serving. Other failures (permissions, a full disk) are thrown.
    public static func openOrReset(_ path: String, now: Date = Date()) throws -> (Journal, Reset?) {
        do {
            let journal = try Journal(creatingDirectoryFor: path)
            try journal.check()
            return (journal, nil)
        } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
            let stamp = Int(now.timeIntervalSince1970)
            let aside = "\(path).corrupt-\(stamp)"
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                guard rename(path + suffix, aside + suffix) == 0 else { throw error }
            }
            let journal = try Journal(creatingDirectoryFor: path)
            return (journal, Reset(at: now, movedTo: aside, reason: "\(error.message ?? "\(error.resultCode)")"))
        }
    }

    /// SQLite's own consistency check of the whole file.
    public func check() throws {
        let result = try writer.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
        guard result == "ok" else { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: result ?? "quick_check failed") }
    }

    /// Whether an error is a full disk (SQLite's `SQLITE_FULL`, or `ENOSPC` underneath).
    public static func isDiskFull(_ error: any Error) -> Bool {
        if let error = error as? DatabaseError { return error.resultCode == .SQLITE_FULL }
        return "\(error)".contains("No space left on device")
    }

    /// Runs blocking journal work on the journal's queue, off Swift's cooperative pool.
    public func off<T: Sendable>(_ body: @escaping @Sendable (Journal) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body(self) }) }
        }
    }

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
        // Typed operations: the stored form's version (rows before it are format 1), the package
        // diff, and the owning process for recovery that is safe with several writers.
        migrator.registerMigration("3-operation-format-owner") { db in
            try db.alter(table: "txn") { t in
                t.add(column: "format", .integer).notNull().defaults(to: 1)
                t.add(column: "diff", .text)
                t.add(column: "pid", .integer)
                t.add(column: "bootID", .text)
            }
        }
        // Idempotency keys belong to their requester: unique per (requester, key), not globally.
        // SQLite cannot drop a column's UNIQUE, so the table is rebuilt (GRDB runs migrations with
        // foreign keys off, so the events stay).
        migrator.registerMigration("4-idempotency-per-requester") { db in
            try db.execute(
                sql: """
                    CREATE TABLE txn_new (
                      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, operation TEXT NOT NULL,
                      arguments TEXT NOT NULL, state TEXT NOT NULL, requester TEXT NOT NULL, idempotencyKey TEXT,
                      createdAt DATETIME NOT NULL, startedAt DATETIME, finishedAt DATETIME, changed BOOLEAN, summary TEXT,
                      resultChecksum TEXT, error TEXT, role TEXT, format INTEGER NOT NULL DEFAULT 1, diff TEXT, pid INTEGER,
                      bootID TEXT, UNIQUE (requester, idempotencyKey));
                    INSERT INTO txn_new (seq, id, operation, arguments, state, requester, idempotencyKey, createdAt, startedAt,
                      finishedAt, changed, summary, resultChecksum, error, role, format, diff, pid, bootID)
                    SELECT seq, id, operation, arguments, state, requester, idempotencyKey, createdAt, startedAt, finishedAt,
                      changed, summary, resultChecksum, error, role, format, diff, pid, bootID FROM txn;
                    DROP TABLE txn;
                    ALTER TABLE txn_new RENAME TO txn;
                    CREATE INDEX txn_on_state ON txn(state);
                    CREATE INDEX txn_createdAt ON txn(createdAt);
                    """)
        }
        registerFleetMigrations(&migrator)
        registerTelemetryMigrations(&migrator)
        registerFleetAttemptsMigration(&migrator)
        // The kind of a failed transaction (FailureKind), beside its one-line error.
        migrator.registerMigration("8-failure-kind") { db in
            try db.alter(table: "txn") { t in t.add(column: "failure", .text) }
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
        try writer.write { db in
            try record.update(db)
            notify(db, .transaction(record))
        }
    }

    /// Records a finished transaction's final state and, when its stream lacks one, its
    /// `finished` event, in one write (a record written again after the journal was full).
    public func finish(_ record: TransactionRecord, at now: Date = Date()) throws {
        try writer.write { db in
            try record.update(db)
            let finished = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM event WHERE txnId = ? AND kind = 'finished'", arguments: [record.id]) ?? 0
            if finished == 0 { try Self.appendFinishedEvent(record, at: now, db) }
            notify(db, .transaction(record))
        }
    }

    /// Records the commit a running transaction is about to deploy, before it does (its
    /// `resultChecksum`), so that recovery can tell whether the deployment was written.
    public func recordIntendedResult(transaction id: String, checksum: String) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE txn SET resultChecksum = ? WHERE id = ? AND state = 'running'", arguments: [checksum, id])
        }
    }

    /// One transaction by id.
    public func transaction(id: String) throws -> TransactionRecord? {
        try writer.read { db in try TransactionRecord.filter(Column("id") == id).fetchOne(db) }
    }

    /// The transaction `requester` started with `key`, if any.
    public func transaction(idempotencyKey key: String, requester: String) throws -> TransactionRecord? {
        try writer.read { db in
            try TransactionRecord.filter(Column("idempotencyKey") == key && Column("requester") == requester).fetchOne(db)
        }
    }

    /// Newest first; `before` is a `seq` cursor from a previous page.
    public func transactions(
        state: TransactionState? = nil, operation: HostOperation.Kind? = nil, since: Date? = nil, before: Int64? = nil, limit: Int = 50
    ) throws
        -> [TransactionRecord]
    {
        try writer.read { db in
            var request = TransactionRecord.order(Column("seq").desc)
            if let state { request = request.filter(Column("state") == state.rawValue) }
            if let operation { request = request.filter(Column("operation") == operation.rawValue) }
            if let since { request = request.filter(Column("createdAt") >= since.journalText) }
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

    /// This boot's id, which with a pid names the process that owns a queued or running row.
    public static var bootID: String { BootID.current }

    /// Whether the process that owns a queued or running row is gone: another boot, a pid that no
    /// longer exists, this very process (a restarted agent that reuses its predecessor's pid), or a
    /// row from before owners were recorded; also a zombie (dead, not yet waited for) and a pid
    /// the kernel gave to another program since (issue 26: both kept a dead run `running`).
    static func ownerIsGone(_ record: TransactionRecord) -> Bool {
        guard let pid = record.pid, let boot = record.bootID, boot == bootID else { return true }
        if pid == getpid() { return true }
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return false }
        let name = stat[stat.index(after: open)..<close]
        let state = stat[stat.index(after: close)...].drop { $0 == " " }.first
        // Every process that runs transactions is an apt-layer program (the CLI, the agent, or
        // the test runner built with them: the kernel keeps 15 characters of the name).
        return state == "Z" || state == "X" || !name.hasPrefix("apt-layer")
    }

    /// Crash recovery: transactions whose owning process died while they ran become `interrupted`
    /// — or `succeeded` when the commit they were about to deploy is the default deployment's
    /// (the deployment was written; only the journal missed it: being deployed anywhere is not
    /// enough, the commit may be the rollback's) — and queued ones `cancelled`. `defaultChecksum`
    /// reads the sysroot, and only when a dead row has a commit to compare. Rows of live processes
    /// (a CLI run next to the agent) are left alone. Every finished row that lacks a `finished`
    /// event gets one, so every event stream ends. Returns the interrupted ones.
    public func recover(defaultChecksum: () -> String? = { nil }, now: Date = Date()) throws -> [TransactionRecord] {
        try writer.write { db in
            var interrupted: [TransactionRecord] = []
            let open = try TransactionRecord.filter(["running", "queued"].contains(Column("state"))).fetchAll(db).filter(Self.ownerIsGone)
            let current = open.contains { $0.state == .running && $0.resultChecksum != nil } ? defaultChecksum() : nil
            for var record in open {
                if record.state == .running, let checksum = record.resultChecksum, checksum == current {
                    try record.move(to: .succeeded, at: now)
                    record.changed = true
                    record.summary =
                        "Deployed \(checksum.prefix(12)) (\(record.operation.kind.rawValue)); confirmed from the sysroot after a restart."
                } else if record.state == .running {
                    try record.move(to: .interrupted, at: now)
                    record.error = "the process running the transaction stopped; the sysroot was left as its last completed write"
                    interrupted.append(record)
                } else {
                    try record.move(to: .cancelled, at: now)
                    record.error = "the agent restarted before the transaction ran"
                }
                try record.update(db)
            }
            let unterminated = try TransactionRecord.fetchAll(
                db,
                sql: """
                    SELECT * FROM txn WHERE state NOT IN ('running', 'queued')
                    AND NOT EXISTS (SELECT 1 FROM event WHERE event.txnId = txn.id AND event.kind = 'finished')
                    """)
            for record in unterminated where Self.ownerIsGone(record) { try Self.appendFinishedEvent(record, at: now, db) }
            return interrupted
        }
    }

    /// Ends a finished transaction's event stream: a `finished` event numbered after its last.
    private static func appendFinishedEvent(_ record: TransactionRecord, at now: Date, _ db: Database) throws {
        let last = try Int.fetchOne(db, sql: "SELECT MAX(number) FROM event WHERE txnId = ?", arguments: [record.id]) ?? 0
        try EventRecord(
            txnId: record.id, number: last + 1, event: .finished(state: record.state, error: record.error, changed: record.changed), at: now
        ).insert(db)
    }

    /// Deletes finished transactions older than `maxAge` and all but the newest `maxCount`.
    /// Returns how many were deleted.
    @discardableResult
    public func applyRetention(maxAge: TimeInterval, maxCount: Int, now: Date = Date()) throws -> Int {
        try writer.write { db in
            let finished = TransactionState.allCases.filter(\.isFinished).map(\.rawValue)
            var deleted = try TransactionRecord.filter(
                finished.contains(Column("state")) && Column("createdAt") < now.addingTimeInterval(-maxAge).journalText
            )
            .deleteAll(db)
            // Only the positions: decoding whole rows would fail on a row of a newer format.
            let keep = try Int64.fetchAll(db, sql: "SELECT seq FROM txn ORDER BY seq DESC LIMIT ?", arguments: [maxCount])
            if let oldestKept = keep.last, keep.count == maxCount {
                deleted += try TransactionRecord.filter(finished.contains(Column("state")) && Column("seq") < oldestKept).deleteAll(db)
            }
            return deleted
        }
    }
}
