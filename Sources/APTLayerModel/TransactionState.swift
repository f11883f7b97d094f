/// Where a transaction is in its life. The legal moves are ``canMove(to:)``'s; the picture is in
/// `docs/agent.md`.
///
/// ```
/// queued ──► running ──► succeeded | failed | cancelled | interrupted
///    └─────────────────► cancelled
/// ```
public enum TransactionState: String, Sendable, Codable, CaseIterable, Hashable {
    /// Journaled, waiting behind the running transaction (or about to start).
    case queued
    /// The engine is working on it.
    case running
    /// The engine returned a result.
    case succeeded
    /// The engine failed; `error` says why.
    case failed
    /// Cancelled (by a client, a timeout, the agent stopping, or a restart while queued).
    case cancelled
    /// Its process died while it ran; found so at the next start.
    case interrupted

    /// Whether the transaction has ended (no move leads out of these).
    public var isFinished: Bool {
        switch self {
        case .queued, .running: false
        case .succeeded, .failed, .cancelled, .interrupted: true
        }
    }

    /// Whether `next` may follow this state.
    public func canMove(to next: TransactionState) -> Bool {
        switch (self, next) {
        case (.queued, .running), (.queued, .cancelled): true
        case (.running, .succeeded), (.running, .failed), (.running, .cancelled), (.running, .interrupted): true
        default: false
        }
    }

    /// Every legal move, for documentation and tests.
    public static var transitions: [(TransactionState, TransactionState)] {
        allCases.flatMap { from in allCases.filter { from.canMove(to: $0) }.map { (from, $0) } }
    }
}

/// A state change that the state machine does not allow.
public struct IllegalTransition: Error, Sendable, Equatable, CustomStringConvertible {
    /// The state the transaction was in.
    public let from: TransactionState
    /// The state it was asked to move to.
    public let to: TransactionState
    /// Creates the error.
    public init(from: TransactionState, to: TransactionState) {
        self.from = from
        self.to = to
    }
    public var description: String { "a \(from.rawValue) transaction cannot become \(to.rawValue)" }
}
