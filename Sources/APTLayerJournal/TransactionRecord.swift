import APTLayerModel
import Foundation
import GRDB

/// One journaled transaction: recorded before it starts and at every state change.
///
/// Stored in table `txn`: the operation as its kind (`operation`), its canonical flat arguments
/// (`arguments`) and the stored form's version (`format`); the state as its raw value.
public struct TransactionRecord: Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "txn"

    /// Insertion order; the pagination cursor.
    public var seq: Int64?
    /// The transaction's public id (UUID).
    public var id: String
    /// What the transaction does.
    public var operation: HostOperation
    /// Where it is in its life; change it with ``move(to:at:)``.
    public private(set) var state: TransactionState
    /// Who asked (certificate identity, `uid:N` on the agent's local socket, `local:uid:N` for a
    /// CLI run without an agent).
    public var requester: String
    /// The requester's role when it asked (nil for a local CLI run).
    public var role: String?
    /// The client's idempotency key; unique when present.
    public var idempotencyKey: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// False when the engine found nothing to change.
    public var changed: Bool?
    /// One line for the user.
    public var summary: String?
    /// The deployed commit, when the transaction deployed one.
    public var resultChecksum: String?
    /// The one-line error of a failed, cancelled or interrupted transaction.
    public var error: String?
    /// What kind of failure a failed transaction had (nil otherwise, and for rows journaled before
    /// the kind was recorded).
    public var failure: FailureKind?
    /// Package changes of the new (or, for a dry run, planned) deployment.
    public var diff: PackageDiff?
    /// The process that owns the transaction while it is queued or running (crash recovery).
    public var pid: Int32?
    /// The boot the owning process ran in (`/proc/sys/kernel/random/boot_id`).
    public var bootID: String?

    /// Creates a record.
    public init(
        id: String, operation: HostOperation, state: TransactionState = .queued, requester: String, role: String? = nil,
        idempotencyKey: String? = nil, createdAt: Date = Date(), pid: Int32? = nil, bootID: String? = nil
    ) {
        self.id = id
        self.operation = operation
        self.state = state
        self.requester = requester
        self.role = role
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
        self.pid = pid
        self.bootID = bootID
    }

    /// Moves to `next`, refusing a move the state machine does not allow; stamps start and end times.
    public mutating func move(to next: TransactionState, at now: Date = Date()) throws(IllegalTransition) {
        guard state.canMove(to: next) else { throw IllegalTransition(from: state, to: next) }
        state = next
        if next == .running { startedAt = now }
        if next.isFinished { finishedAt = now }
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }

    /// The `txn` table's columns.
    public enum Columns: String, ColumnExpression {
        case seq, id, operation, arguments, format, state, requester, role, idempotencyKey, createdAt, startedAt, finishedAt
        case changed, summary, resultChecksum, error, failure, diff, pid, bootID
    }

    public init(row: Row) throws {
        seq = row[Columns.seq]
        id = row[Columns.id]
        let kind: String = row[Columns.operation]
        let format: Int? = row[Columns.format]
        do {
            operation = try HostOperation(stored: kind, arguments: row[Columns.arguments], format: format ?? 1)
        } catch {
            throw JournalError.unreadableRow(id: id, reason: error.message)
        }
        let rawState: String = row[Columns.state]
        guard let state = TransactionState(rawValue: rawState) else {
            throw JournalError.unreadableRow(id: id, reason: "unknown state \(rawState)")
        }
        self.state = state
        requester = row[Columns.requester]
        role = row[Columns.role]
        idempotencyKey = row[Columns.idempotencyKey]
        createdAt = row[Columns.createdAt]
        startedAt = row[Columns.startedAt]
        finishedAt = row[Columns.finishedAt]
        changed = row[Columns.changed]
        summary = row[Columns.summary]
        resultChecksum = row[Columns.resultChecksum]
        error = row[Columns.error]
        // A kind this version does not know (a newer writer's) reads as unknown, not as unreadable.
        failure = (row[Columns.failure] as String?).flatMap(FailureKind.init(rawValue:))
        if let text: String = row[Columns.diff] {
            diff = try? JSONDecoder().decode(PackageDiff.self, from: Data(text.utf8))
        }
        pid = row[Columns.pid]
        bootID = row[Columns.bootID]
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.seq] = seq
        container[Columns.id] = id
        container[Columns.operation] = operation.kind.rawValue
        container[Columns.arguments] = operation.arguments.canonicalJSON
        container[Columns.format] = HostOperation.format
        container[Columns.state] = state.rawValue
        container[Columns.requester] = requester
        container[Columns.role] = role
        container[Columns.idempotencyKey] = idempotencyKey
        container[Columns.createdAt] = createdAt.journalText
        container[Columns.startedAt] = startedAt?.journalText
        container[Columns.finishedAt] = finishedAt?.journalText
        container[Columns.changed] = changed
        container[Columns.summary] = summary
        container[Columns.resultChecksum] = resultChecksum
        container[Columns.error] = error
        container[Columns.failure] = failure?.rawValue
        container[Columns.diff] = try diff.map { d -> String in String(decoding: try JSONEncoder().encode(d), as: UTF8.self) }
        container[Columns.pid] = pid.map { Int64($0) }
        container[Columns.bootID] = bootID
    }
}

/// One event of a transaction's stream.
public struct EventRecord: Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "event"

    /// The transaction's id.
    public var txnId: String
    /// 1, 2, 3... within the transaction (the SSE `id:`).
    public var number: Int
    /// The event.
    public var event: TransactionEvent
    public var at: Date

    /// Creates an event.
    public init(txnId: String, number: Int, event: TransactionEvent, at: Date = Date()) {
        self.txnId = txnId
        self.number = number
        self.event = event
        self.at = at
    }

    public init(row: Row) throws {
        txnId = row["txnId"]
        number = row["number"]
        at = row["at"]
        let rawKind: String = row["kind"]
        guard let kind = TransactionEvent.Kind(rawValue: rawKind) else {
            throw JournalError.unreadableRow(id: txnId, reason: "unknown event kind \(rawKind)")
        }
        do { event = try TransactionEvent(kind: kind, json: row["data"]) } catch {
            throw JournalError.unreadableRow(id: txnId, reason: "event \(number): \(error)")
        }
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container["txnId"] = txnId
        container["number"] = number
        container["kind"] = event.kind.rawValue
        container["data"] = event.json
        container["at"] = at.journalText
    }
}

/// A journal failure that is not SQLite's own.
public enum JournalError: Error, Sendable, CustomStringConvertible {
    /// A row that this version cannot decode.
    case unreadableRow(id: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableRow(let id, let reason): "unreadable journal row \(id): \(reason)"
        }
    }
}
