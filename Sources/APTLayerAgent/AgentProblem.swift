import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTransaction
import HTTPTypes

/// An API failure rendered as `application/problem+json` (RFC 9457) with a stable `type`.
public struct AgentProblem: Error, Sendable, CustomStringConvertible {
    /// HTTP status.
    public var status: Int
    /// The stable type (`urn:apt-layer:problem:…`).
    public var kind: ProblemType
    /// Short human title.
    public var title: String
    /// One line about this occurrence.
    public var detail: String?
    /// The transaction concerned (a 409 names the running one).
    public var transaction: String?
    /// The error underneath a 5xx, for the log.
    public var cause: (any Error)?
    /// 400: the JSON pointer of the offending member (`/query/NAME`, `/path/NAME` for parameters).
    public var pointer: String?
    /// 400: the values the member may take, when the document lists them.
    public var allowed: [String]?

    /// Creates a problem.
    public init(status: Int, kind: ProblemType, title: String, detail: String? = nil, transaction: String? = nil, cause: (any Error)? = nil) {
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.transaction = transaction
        self.cause = cause
    }

    /// The full `type` URI.
    public var type: String { kind.uri }
    public var description: String { "\(status) \(title)\(detail.map { ": \($0)" } ?? "")" }

    static func badRequest(_ detail: String) -> AgentProblem { .init(status: 400, kind: .badRequest, title: "Bad request", detail: detail) }
    /// A request that matches the schema but names an operation that cannot be done as asked
    /// (an argument that does not apply, a hostile kernel argument, an internal ref): 422.
    static func invalidOperation(_ detail: String) -> AgentProblem {
        .init(status: 422, kind: .invalidOperation, title: "Invalid operation", detail: detail)
    }
    /// An upload over `max-upload-bytes`, declared or streamed.
    static func uploadTooLarge(limit: Int64) -> AgentProblem {
        .init(status: 413, kind: .bodyTooLarge, title: "Upload too large", detail: "limit is \(limit) bytes (max-upload-bytes)")
    }
    static func notFound(_ detail: String) -> AgentProblem { .init(status: 404, kind: .notFound, title: "Not found", detail: detail) }
    static func forbidden(_ detail: String) -> AgentProblem { .init(status: 403, kind: .forbidden, title: "Forbidden", detail: detail) }

    /// Maps an engine error to a problem.
    static func engine(_ error: EngineError) -> AgentProblem {
        if error.isOutOfSpace {
            return .init(status: 507, kind: .insufficientStorage, title: "Insufficient storage", detail: error.message, cause: error)
        }
        switch error.kind {
        case .busy: return .init(status: 409, kind: .busy, title: "Busy", detail: error.message)
        case .invalidArgument: return .badRequest(error.message)
        case .notFound: return .notFound(error.message)
        case .refused: return .init(status: 422, kind: .refused, title: "Refused", detail: error.message)
        case .badPackage: return .init(status: 422, kind: .badPackage, title: "Bad package", detail: error.message)
        default: return .init(status: 500, kind: .engine, title: "Engine failure", detail: error.message, cause: error)
        }
    }

    /// Maps a transaction manager refusal or failure to a problem.
    static func transaction(_ error: TransactionError) -> AgentProblem {
        switch error {
        case .busy(let id, _):
            return .init(status: 409, kind: .busy, title: "Another transaction is running", detail: error.description, transaction: id)
        case .queueFull: return .init(status: 429, kind: .queueFull, title: "Transaction queue is full", detail: error.description)
        case .notFound: return .notFound(error.description)
        case .forbidden(let why): return .forbidden(why)
        case .finished(let id, _):
            return .init(status: 409, kind: .finished, title: "Transaction already finished", detail: error.description, transaction: id)
        case .idempotencyKeyReused(_, let id):
            return .init(
                status: 422, kind: .idempotencyKeyReused, title: "Idempotency key reused with a different request",
                detail: error.description, transaction: id)
        case .journal(let id, let cause) where Journal.isDiskFull(cause):
            return .init(
                status: 507, kind: .insufficientStorage, title: "Insufficient storage",
                detail: "the journal's filesystem is full; nothing was started", transaction: id, cause: cause)
        case .journal(let id, let cause):
            return .init(
                status: 500, kind: .journal, title: "Journal failure", detail: "the agent could not use its journal", transaction: id,
                cause: cause)
        }
    }
}
