import APTLayerModel

/// Why the transaction manager refused or could not take a request. The agent maps these to
/// HTTP problems at its edge; the CLI prints them as one line.
public enum TransactionError: Error, Sendable, CustomStringConvertible {
    /// Another transaction is running and the caller did not ask to wait.
    case busy(running: String, kind: HostOperation.Kind)
    /// The queue for `wait=true` is full.
    case queueFull(queued: Int)
    /// No transaction has that id.
    case notFound(id: String)
    /// The caller may not cancel someone else's transaction.
    case forbidden(String)
    /// The transaction has already ended.
    case finished(id: String, state: TransactionState)
    /// The caller's idempotency key already started a different operation.
    case idempotencyKeyReused(key: String, transaction: String)
    /// The journal could not be written or read: our fault, not the caller's.
    case journal(transaction: String?, cause: any Error)

    public var description: String {
        switch self {
        case .busy(let id, let kind): "\(kind.rawValue) \(id) is running; cancel it or retry with wait=true"
        case .queueFull(let n): "\(n) transactions are queued"
        case .notFound(let id): "no transaction \(id)"
        case .forbidden(let why): why
        case .finished(let id, let state): "\(id) is \(state.rawValue)"
        case .idempotencyKeyReused(let key, let id): "idempotency key \(key) already started transaction \(id) with a different request"
        case .journal(let id, let cause): "journal failure\(id.map { " (transaction \($0))" } ?? ""): \(cause)"
        }
    }
}
