import APTLayerModel
import Foundation
import GRDB

/// A fleet policy that passed every check: the exact bytes and signature that were verified.
/// Table `fleet_policy`; the newest row is the policy in force. Rows outlive OS rollbacks (the
/// journal lives under `/var`).
public struct PolicyRecord: Sendable, Equatable, Codable, FetchableRecord, MutablePersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "fleet_policy"
    public var seq: Int64?
    public var fleet: String
    public var version: Int64
    public var bytes: Data
    public var signature: String
    /// Principals of the trusted keys that signed it, comma-separated.
    public var signers: String
    /// The server's entity tag, for `If-None-Match`.
    public var etag: String?
    public var acceptedAt: Date

    public init(fleet: String, version: Int64, bytes: Data, signature: String, signers: String, etag: String?, acceptedAt: Date) {
        self.fleet = fleet
        self.version = version
        self.bytes = bytes
        self.signature = signature
        self.signers = signers
        self.etag = etag
        self.acceptedAt = acceptedAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}

/// A policy fetch that did not produce a new accepted policy because something was wrong with it
/// (not because it was unchanged). Table `fleet_policy_rejection`.
public struct PolicyRejectionRecord: Sendable, Equatable, Codable, FetchableRecord, MutablePersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "fleet_policy_rejection"
    public var seq: Int64?
    public var at: Date
    /// The kind of refusal (`fetch`, `signature`, `below-threshold`, `wrong-fleet`, `not-newer`,
    /// `equivocation`, `expired`, `invalid`).
    public var kind: String
    /// One line saying why.
    public var message: String
    /// The refused version, when the document decoded far enough to have one.
    public var version: Int64?

    public init(at: Date, kind: String, message: String, version: Int64?) {
        self.at = at
        self.kind = kind
        self.message = message
        self.version = version
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}

/// The update driver's durable state: one row (`id` 1) in table `fleet_driver`, written before
/// every transition (with a row in `fleet_transition`), so that a restart, a kill -9 or a reboot
/// resumes where it was.
public struct DriverRecord: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "fleet_driver"
    public var id = 1
    public var state: UpdateState
    /// The release being rolled out (id and commit) and the base commit it replaces.
    public var releaseId: String?
    public var commit: String?
    public var previousCommit: String?
    /// Reboots into this release so far; a persistent counter that ends reboot loops.
    public var attempts: Int
    /// Whether this host holds a FleetLock slot: true, false, or nil when unknown (a crash between
    /// asking and recording).
    public var lockHeld: Bool?
    /// The FleetLock group the slot is held in.
    public var lockGroup: String?
    /// The last reboot was a rollback away from `commit`.
    public var rolledBack: Bool
    /// Why the driver is in this state (one line).
    public var reason: String
    public var since: Date
    /// The boot (`/proc/sys/kernel/random/boot_id`) the state was written in.
    public var bootID: String?

    public init(state: UpdateState, reason: String, since: Date) {
        self.state = state
        self.reason = reason
        self.since = since
        attempts = 0
        rolledBack = false
    }
}

/// One journaled move of the update driver. Table `fleet_transition`.
public struct DriverTransitionRecord: Sendable, Equatable, Codable, FetchableRecord, MutablePersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "fleet_transition"
    public var seq: Int64?
    public var at: Date
    public var from: UpdateState
    public var to: UpdateState
    public var releaseId: String?
    public var reason: String

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }
}

/// A release that failed its health checks on this host. Table `fleet_denylist`; retried only when
/// a signed policy gives the release a `retry-epoch` above `retryEpoch`.
public struct DenylistRecord: Sendable, Equatable, Codable, FetchableRecord, PersistableRecord {
    /// Dates as GRDB stores them, made without ICU (``Foundation/Date/journalText``).
    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy { .journal }

    public static let databaseTableName = "fleet_denylist"
    public var releaseId: String
    public var commit: String
    public var retryEpoch: Int
    public var at: Date
    public var reason: String

    public init(releaseId: String, commit: String, retryEpoch: Int, at: Date, reason: String) {
        self.releaseId = releaseId
        self.commit = commit
        self.retryEpoch = retryEpoch
        self.at = at
        self.reason = reason
    }
}

extension Journal {
    static func registerFleetMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("5-fleet") { db in
            try db.create(table: "fleet_policy") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("fleet", .text).notNull()
                t.column("version", .integer).notNull()
                t.column("bytes", .blob).notNull()
                t.column("signature", .text).notNull()
                t.column("signers", .text).notNull()
                t.column("etag", .text)
                t.column("acceptedAt", .datetime).notNull()
            }
            try db.create(table: "fleet_policy_rejection") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("at", .datetime).notNull()
                t.column("kind", .text).notNull()
                t.column("message", .text).notNull()
                t.column("version", .integer)
            }
            try db.create(table: "fleet_driver") { t in
                t.primaryKey("id", .integer)
                t.column("state", .text).notNull()
                t.column("releaseId", .text)
                t.column("commit", .text)
                t.column("previousCommit", .text)
                t.column("attempts", .integer).notNull()
                t.column("lockHeld", .boolean)
                t.column("lockGroup", .text)
                t.column("rolledBack", .boolean).notNull()
                t.column("reason", .text).notNull()
                t.column("since", .datetime).notNull()
                t.column("bootID", .text)
            }
            try db.create(table: "fleet_transition") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("at", .datetime).notNull()
                t.column("from", .text).notNull()
                t.column("to", .text).notNull()
                t.column("releaseId", .text)
                t.column("reason", .text).notNull()
            }
            try db.create(table: "fleet_denylist") { t in
                t.column("releaseId", .text).notNull()
                t.column("commit", .text).notNull()
                t.primaryKey(["releaseId", "commit"])
                t.column("retryEpoch", .integer).notNull()
                t.column("at", .datetime).notNull()
                t.column("reason", .text).notNull()
            }
        }
    }

    static func registerFleetAttemptsMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("7-fleet-attempts") { db in
            try db.create(table: "fleet_attempts") { t in
                t.column("releaseId", .text).notNull()
                t.column("commit", .text).notNull()
                t.primaryKey(["releaseId", "commit"])
                t.column("attempts", .integer).notNull()
            }
            // The driver's own release keeps the count it had.
            try db.execute(
                sql: """
                    INSERT INTO fleet_attempts (releaseId, "commit", attempts)
                    SELECT releaseId, "commit", attempts FROM fleet_driver WHERE releaseId IS NOT NULL AND "commit" IS NOT NULL
                    """)
        }
    }

    /// The policy in force: the newest accepted one.
    public func acceptedPolicy() throws -> PolicyRecord? {
        try writer.read { db in try PolicyRecord.order(Column("seq").desc).fetchOne(db) }
    }

    /// Records an accepted policy; keeps the newest `keep` rows.
    public func recordAccepted(_ policy: PolicyRecord, keep: Int = 20) throws -> PolicyRecord {
        try writer.write { db in
            var row = policy
            try row.insert(db)
            try db.execute(sql: "DELETE FROM fleet_policy WHERE seq <= ?", arguments: [(row.seq ?? 0) - Int64(keep)])
            notify(db, .policy)
            return row
        }
    }

    /// Records a refused policy; keeps the newest `keep` rows.
    public func recordRejection(_ rejection: PolicyRejectionRecord, keep: Int = 100) throws {
        try writer.write { db in
            var row = rejection
            try row.insert(db)
            try db.execute(sql: "DELETE FROM fleet_policy_rejection WHERE seq <= ?", arguments: [(row.seq ?? 0) - Int64(keep)])
        }
    }

    /// The newest refusals, newest first.
    public func rejections(limit: Int = 10) throws -> [PolicyRejectionRecord] {
        try writer.read { db in try PolicyRejectionRecord.order(Column("seq").desc).limit(limit).fetchAll(db) }
    }

    /// The driver's state (nil before its first transition).
    public func driver() throws -> DriverRecord? {
        try writer.read { db in try DriverRecord.fetchOne(db, key: 1) }
    }

    /// Writes the driver's state and, when the state changes, a transition row, in one SQLite
    /// transaction; with `denylisting`, the denylist entry too (a release given up is denylisted
    /// exactly when the move that gives it up is journaled). Refuses a move
    /// ``UpdateState/canMove(to:)`` does not allow.
    public func saveDriver(_ record: DriverRecord, denylisting entry: DenylistRecord? = nil) throws {
        try writer.write { db in
            if let entry {
                try entry.save(db)
                notify(db, .denylist)
            }
            let old = try DriverRecord.fetchOne(db, key: 1)
            let from = old?.state ?? .idle
            if from != record.state {
                guard old == nil || from.canMove(to: record.state) else {
                    throw IllegalUpdateTransition(from: from, to: record.state)
                }
                var move = DriverTransitionRecord(at: record.since, from: from, to: record.state, releaseId: record.releaseId, reason: record.reason)
                try move.insert(db)
                try db.execute(sql: "DELETE FROM fleet_transition WHERE seq <= ?", arguments: [(move.seq ?? 0) - 1000])
                for counter in JournalCounter.moved(from: from, to: record.state) { try Self.increment(db, counter) }
            }
            try record.save(db)
            if let releaseId = record.releaseId, let commit = record.commit {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO fleet_attempts (releaseId, \"commit\", attempts) VALUES (?, ?, ?)",
                    arguments: [releaseId, commit, record.attempts])
            }
            notify(db, .driver(record))
        }
    }

    /// Reboots journaled into a release (id and commit) since it was last healthy: table
    /// `fleet_attempts`, written by ``saveDriver(_:denylisting:)`` with every record that names a
    /// release, so the counter that ends reboot loops survives the policy switching to another
    /// release and back. 0 for a release never rebooted into.
    public func attempts(releaseId: String, commit: String) throws -> Int {
        try writer.read { db in
            try Int.fetchOne(db, sql: "SELECT attempts FROM fleet_attempts WHERE releaseId = ? AND \"commit\" = ?", arguments: [releaseId, commit])
        } ?? 0
    }

    /// The driver's most recent moves, newest first.
    public func driverTransitions(limit: Int = 50) throws -> [DriverTransitionRecord] {
        try writer.read { db in try DriverTransitionRecord.order(Column("seq").desc).limit(limit).fetchAll(db) }
    }

    /// Denylists a release on this host.
    public func denylist(_ entry: DenylistRecord) throws {
        try writer.write { db in
            try entry.save(db)
            notify(db, .denylist)
        }
    }

    /// The denylist entry for a release, if any.
    public func denylisted(releaseId: String, commit: String) throws -> DenylistRecord? {
        try writer.read { db in try DenylistRecord.fetchOne(db, key: ["releaseId": releaseId, "commit": commit]) }
    }

    /// Every denylisted release, newest first.
    public func denylist() throws -> [DenylistRecord] {
        try writer.read { db in try DenylistRecord.order(Column("at").desc).fetchAll(db) }
    }

    /// Removes a release from the denylist (a higher retry epoch, or `apt-layer fleet retry`).
    public func removeFromDenylist(releaseId: String, commit: String) throws {
        try writer.write { db in
            if try DenylistRecord.deleteOne(db, key: ["releaseId": releaseId, "commit": commit]) { notify(db, .denylist) }
        }
    }
}

/// A driver move that ``UpdateState/canMove(to:)`` does not allow.
public struct IllegalUpdateTransition: Error, Sendable, Equatable, CustomStringConvertible {
    public let from: UpdateState
    public let to: UpdateState

    public init(from: UpdateState, to: UpdateState) {
        self.from = from
        self.to = to
    }

    public var description: String { "the update driver cannot move from \(from.rawValue) to \(to.rawValue)" }
}
