import Foundation
import GRDB

/// One journaled transaction: recorded before it starts and at every state change.
public struct TransactionRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "txn"

    /// Insertion order; the pagination cursor.
    public var seq: Int64?
    /// The transaction's public id (UUID).
    public var id: String
    /// The operation (`install`, `rollback`...).
    public var operation: String
    /// The arguments, as canonical JSON.
    public var arguments: String
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `interrupted`.
    public var state: String
    /// Who asked (certificate identity, or `uid:N` on the local socket).
    public var requester: String
    /// The requester's role when it asked.
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

    /// Creates a record.
    public init(
        id: String, operation: String, arguments: String, state: String, requester: String, role: String? = nil,
        idempotencyKey: String? = nil, createdAt: Date = Date()
    ) {
        self.id = id
        self.operation = operation
        self.arguments = arguments
        self.state = state
        self.requester = requester
        self.role = role
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { seq = inserted.rowID }

    /// Whether the transaction has ended.
    public var isFinished: Bool { ["succeeded", "failed", "cancelled", "interrupted"].contains(state) }
}

/// One event of a transaction's stream (task-begin, task-end, message, percent, finished).
public struct EventRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "event"

    /// The transaction's id.
    public var txnId: String
    /// 1, 2, 3... within the transaction.
    public var number: Int
    /// The SSE event name.
    public var kind: String
    /// The SSE data (JSON).
    public var data: String
    public var at: Date

    /// Creates an event.
    public init(txnId: String, number: Int, kind: String, data: String, at: Date = Date()) {
        self.txnId = txnId
        self.number = number
        self.kind = kind
        self.data = data
        self.at = at
    }
}
