/// Why a transaction failed, for machines: its `error` is the line for people. A dashboard tells a
/// full filesystem from a package apt cannot resolve from a broken maintainer script by this, not
/// by parsing the message. `openapi/openapi.yaml` lists the same values (`Transaction.failure`).
public enum FailureKind: String, CaseIterable, Codable, Sendable {
    /// Another process held the sysroot.
    case busy
    /// The request was wrong for this host (an index, a package that is not layered...).
    case invalidArgument = "invalid-argument"
    /// A package, deployment or commit that does not exist.
    case notFound = "not-found"
    /// apt found no consistent set of packages.
    case unsatisfiable
    /// A .deb was corrupt, truncated or unsafe.
    case badPackage = "bad-package"
    /// dpkg or a maintainer script failed.
    case packageFailed = "package-failed"
    /// apt-layer refused (a kernel package, an unsigned module under Secure Boot...).
    case refused
    /// A filesystem was full, or would have been (the space preflight): `/boot`, the sysroot.
    case outOfSpace = "out-of-space"
    /// Anything else: libostree, a subprocess, the system.
    case system

    /// The kind of an engine error (out-of-space whatever its kind when its cause is a full
    /// filesystem); nil for a cancellation, which is a state of its own.
    public init?(_ error: EngineError) {
        if error.isOutOfSpace {
            self = .outOfSpace
            return
        }
        switch error.kind {
        case .busy: self = .busy
        case .invalidArgument: self = .invalidArgument
        case .notFound: self = .notFound
        case .unsatisfiable: self = .unsatisfiable
        case .badPackage: self = .badPackage
        case .packageFailed: self = .packageFailed
        case .refused: self = .refused
        case .cancelled: return nil
        case .system: self = .system
        }
    }
}
