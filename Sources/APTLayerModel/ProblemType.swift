/// Every problem type the agent answers with (`urn:apt-layer:problem:<slug>`), shared by the
/// server, which renders them, and the CLI, which reads them. `openapi/openapi.yaml` lists them
/// under `Problem.type` and docs/api.md explains each; a test keeps the three the same.
public enum ProblemType: String, CaseIterable, Sendable {
    case badRequest = "bad-request"
    case forbidden
    case notFound = "not-found"
    case methodNotAllowed = "method-not-allowed"
    case notAcceptable = "not-acceptable"
    case requestTimeout = "request-timeout"
    case busy
    case finished
    case bodyTooLarge = "body-too-large"
    case unsupportedMediaType = "unsupported-media-type"
    case invalidOperation = "invalid-operation"
    case badPackage = "bad-package"
    case refused
    case idempotencyKeyReused = "idempotency-key-reused"
    case queueFull = "queue-full"
    case `internal`
    case engine
    case journal
    case insufficientStorage = "insufficient-storage"

    /// The prefix of every problem type URI.
    public static let prefix = "urn:apt-layer:problem:"

    /// The `type` member: `urn:apt-layer:problem:<slug>`.
    public var uri: String { Self.prefix + rawValue }

    /// The type a `type` member names, if it is one of ours.
    public init?(uri: String) {
        guard uri.hasPrefix(Self.prefix) else { return nil }
        self.init(rawValue: String(uri.dropFirst(Self.prefix.count)))
    }

    /// The type of a status the HTTP layer (not a handler) answers with.
    public init(httpStatus status: Int) {
        switch status {
        case 404: self = .notFound
        case 405: self = .methodNotAllowed
        case 406: self = .notAcceptable
        case 408: self = .requestTimeout
        case 413: self = .bodyTooLarge
        case 415: self = .unsupportedMediaType
        case 400..<500: self = .badRequest
        default: self = .internal
        }
    }
}
