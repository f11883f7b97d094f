/// Why a transaction failed, for machines: its `error` is the line for people. A dashboard tells a
/// full filesystem from a package apt cannot resolve from a broken maintainer script by this, not
/// by parsing the message. `openapi/openapi.yaml` lists the same values (`Transaction.failure`).
/// The cases are ``EngineError/Kind``'s but `cancelled`, and `out-of-space`.
public enum FailureKind: String, CaseIterable, Codable, Sendable {
    // As ``EngineError/Kind`` (the same raw values, which ``init(_:)`` relies on).
    case busy
    case invalidArgument = "invalid-argument"
    case notFound = "not-found"
    case unsatisfiable
    case badPackage = "bad-package"
    case packageFailed = "package-failed"
    case refused
    case system
    /// A filesystem was full, or would have been (the space preflight): `/boot`, the sysroot.
    case outOfSpace = "out-of-space"

    /// The kind of an engine error: out-of-space whatever its kind when its cause is a full
    /// filesystem, else the engine's kind of the same name; nil for a cancellation, which is a
    /// state of its own.
    public init?(_ error: EngineError) {
        if error.isOutOfSpace {
            self = .outOfSpace
        } else {
            // The cases share ``EngineError/Kind``'s raw values; `cancelled` has none here.
            self.init(rawValue: error.kind.rawValue)
        }
    }
}
