import Foundation

/// One mutating operation on a host's deployments, with its typed arguments: what the CLI asks for,
/// what the API carries, what the journal stores and what the engine runs. Every path (a local CLI
/// run, the agent's local socket, mTLS, later the fleet driver) builds one of these.
///
/// Its stored form is versioned (``HostOperation/format``): the kind, the flat ``Arguments`` object
/// and a format number; rows written by an older format still decode.
public enum HostOperation: Sendable, Equatable, Hashable {
    /// Layer packages (names from the apt sources, or host paths to .deb files).
    case install(packages: [String], flags: LayeringFlags)
    /// Remove layered packages (`all`: every one).
    case uninstall(packages: [String], all: Bool, flags: LayeringFlags)
    /// Remove base packages.
    case overrideRemove(packages: [String], flags: LayeringFlags)
    /// Replace base packages: with local .deb files (host paths or upload digests), or with the
    /// version the apt sources' suite `fromRepo` has (`packages` are then names).
    case overrideReplace(packages: [String], fromRepo: String?, flags: LayeringFlags)
    /// Restore removed or replaced base packages (`all`: every override).
    case overrideReset(packages: [String], all: Bool, flags: LayeringFlags)
    /// Move to the newest base commit (`check`: only report whether anything would change).
    case upgrade(check: Bool, flags: LayeringFlags)
    /// Move the base to a version or checksum of its ref.
    case deploy(target: String, flags: LayeringFlags)
    /// Switch the base to another ref (`REF` or `REMOTE:REF`), optionally pinned to a version or
    /// checksum of it (`target`); with `remoteURL`, REMOTE is added (or re-pointed) to that URL
    /// first, in the same transaction.
    case rebase(ref: String, target: String? = nil, remoteURL: String? = nil, flags: LayeringFlags)
    /// Make the previous deployment the default.
    case rollback
    /// Remove the pending and/or rollback deployments and prune.
    case cleanup(pending: Bool, rollback: Bool)
    /// Pin a deployment by index.
    case pin(index: Int)
    /// Unpin a deployment by index.
    case unpin(index: Int)
    /// Edit kernel arguments into a new deployment.
    case kargs(KernelArguments.Edits)
    /// Unlock a staged deployment locked with `lockFinalization`.
    case finalize
    /// Apply the pending deployment's changes to the running system (`reset`: go back to the booted
    /// deployment's content), through a transient overlay on `/usr`.
    case applyLive(reset: Bool, options: LiveOptions)

    /// The current stored format. 1: the agent's first journal (no `lockFinalization`/`refresh`,
    /// no format column); 2: this one.
    public static let format = 2

    /// The operation's name, as the API, the journal and metrics name it.
    public enum Kind: String, Sendable, Codable, CaseIterable, Hashable {
        case install, uninstall
        case overrideRemove = "override-remove"
        case overrideReplace = "override-replace"
        case overrideReset = "override-reset"
        case upgrade, deploy, rebase, rollback, cleanup, kargs, pin, unpin, finalize
        case applyLive = "apply-live"

        /// The verb as the command line spells it (`override remove`).
        public var words: String { rawValue.replacingOccurrences(of: "-", with: " ") }

        /// Whether the kind builds a new layered deployment (and so takes ``LayeringFlags``).
        public var isLayering: Bool {
            switch self {
            case .install, .uninstall, .overrideRemove, .overrideReplace, .overrideReset, .upgrade, .deploy, .rebase: true
            default: false
            }
        }
    }

    /// The operation's kind.
    public var kind: Kind {
        switch self {
        case .install: .install
        case .uninstall: .uninstall
        case .overrideRemove: .overrideRemove
        case .overrideReplace: .overrideReplace
        case .overrideReset: .overrideReset
        case .upgrade: .upgrade
        case .deploy: .deploy
        case .rebase: .rebase
        case .rollback: .rollback
        case .cleanup: .cleanup
        case .pin: .pin
        case .unpin: .unpin
        case .kargs: .kargs
        case .finalize: .finalize
        case .applyLive: .applyLive
        }
    }

    /// The items that name .deb files on the caller's host (paths, not upload digests): an
    /// install's, and a replacement's when it takes files.
    public var hostPaths: [String] {
        switch self {
        case .install(let packages, _), .overrideReplace(let packages, nil, _): packages.filter(Operand.isHostPath)
        default: []
        }
    }

    /// The same operation with its package items mapped (uploads replace host paths by digests).
    public func mappingPackages(_ transform: (String) throws -> String) rethrows -> HostOperation {
        switch self {
        case .install(let packages, let flags): .install(packages: try packages.map(transform), flags: flags)
        case .overrideReplace(let packages, nil, let flags): .overrideReplace(packages: try packages.map(transform), fromRepo: nil, flags: flags)
        default: self
        }
    }

    /// The layering flags, for layering kinds.
    public var flags: LayeringFlags? {
        switch self {
        case .install(_, let f), .uninstall(_, _, let f), .overrideRemove(_, let f), .overrideReplace(_, _, let f), .overrideReset(_, _, let f),
            .upgrade(_, let f), .deploy(_, let f), .rebase(_, _, _, let f):
            f
        default: nil
        }
    }
}

/// A request that does not make a valid operation; the message is one line for the user.
public struct OperationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public let message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
