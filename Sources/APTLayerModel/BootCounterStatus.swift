import Foundation

/// The boot counter as `status` shows it (docs/boot-counting.md): whether the next boot into a
/// new deployment is protected, and whether this boot is a fall-back from one that did not come up.
public struct BootCounterStatus: Encodable, Sendable, Equatable {
    /// What GRUB's environment block says.
    public enum State: String, Encodable, Sendable {
        /// Nothing to protect: the default deployment has booted and was marked good.
        case unarmed
        /// The next boots into ``BootCounterStatus/deployment`` are counted.
        case armed
        /// The menu booted the previous deployment; not yet handled by the agent or `boot-check`.
        case fellBack = "fell-back"
    }

    public var state: State
    /// Tries left while armed.
    public var triesLeft: Int?
    /// The deployment the counter protects, `CHECKSUM.SERIAL`.
    public var deployment: String?
    /// Set when this boot is a fall-back: which deployment failed to come up, and when it was handled.
    public var fallback: BootFallback?
    /// Why the block could not be read (then it counts as unarmed and the default entry boots).
    public var problem: String?

    public init(state: State, triesLeft: Int? = nil, deployment: String? = nil, fallback: BootFallback? = nil, problem: String? = nil) {
        self.state = state
        self.triesLeft = triesLeft
        self.deployment = deployment
        self.fallback = fallback
        self.problem = problem
    }
}

/// A boot the menu's counter sent back to the previous deployment.
public struct BootFallback: Encodable, Sendable, Equatable {
    /// The deployment (`CHECKSUM.SERIAL`) that did not come up within its tries; nil when the
    /// block did not name it and the default was already the booted one.
    public var failedDeployment: String?
    /// The deployment booted instead (`CHECKSUM.SERIAL`).
    public var bootedDeployment: String
    /// When the fall-back was handled (the booted deployment made the default), seconds since the epoch.
    public var handledAt: Int64

    public init(failedDeployment: String?, bootedDeployment: String, handledAt: Int64) {
        self.failedDeployment = failedDeployment
        self.bootedDeployment = bootedDeployment
        self.handledAt = handledAt
    }

    enum CodingKeys: String, CodingKey { case failedDeployment, bootedDeployment, handledAt }

    /// The status document's form: `handledAt` in RFC 3339, as every time in it.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(failedDeployment, forKey: .failedDeployment)
        try c.encode(bootedDeployment, forKey: .bootedDeployment)
        try c.encode(StatusDocument.DeploymentStatus.rfc3339(UInt64(max(0, handledAt))), forKey: .handledAt)
    }
}
