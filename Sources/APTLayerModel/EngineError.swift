import Foundation

/// An engine failure: what kind it is, a one-line reason for the user, and the cause underneath.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    /// The class of failure; the agent maps it to an HTTP status, the CLI to an exit code.
    public enum Kind: String, Sendable {
        /// Another process holds the sysroot lock.
        case busy
        /// The request itself is wrong (unknown verb argument, bad index, not requested...).
        case invalidArgument = "invalid-argument"
        /// A package name apt does not know, or a deployment/commit that does not exist.
        case notFound = "not-found"
        /// apt could not find a consistent set of packages.
        case unsatisfiable
        /// A .deb file is corrupt, truncated or unsafe.
        case badPackage = "bad-package"
        /// dpkg or a maintainer script failed.
        case packageFailed = "package-failed"
        /// apt-layer refuses to do this (kernel packages, `/` not booted...).
        case refused
        /// The run was cancelled (signal, API, timeout).
        case cancelled
        /// A filesystem, libostree or subprocess failure.
        case system
    }

    /// The class of failure.
    public let kind: Kind
    /// One line, naming the cause.
    public let message: String
    /// The error underneath, when there is one.
    public let underlying: (any Error)?

    /// Creates an error.
    public init(_ kind: Kind, _ message: String, underlying: (any Error)? = nil) {
        self.kind = kind
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }

    /// Whether a filesystem filled up underneath (ENOSPC or EDQUOT, or the text libostree and
    /// dpkg use for it).
    public var isOutOfSpace: Bool {
        if let posix = underlying as? POSIXError { return posix.code == .ENOSPC || posix.code == .EDQUOT }
        return message.localizedCaseInsensitiveContains("no space left on device")
    }
}
