import APTLayerFleet
import APTLayerJournal
import Foundation

/// The policy's release for this host's stream, as the driver acts on it.
public struct ReleaseOrder: Sendable, Equatable {
    public var id: String
    public var commit: String
    /// The refspec to rebase to (`remote:ref` when the policy names a remote), or for a release
    /// published as an image `ostree-unverified-registry:REGISTRY/NAME@sha256:HEX`.
    public var refspec: String
    /// The remote the policy names, configured before the pull.
    public var remote: FleetPolicy.Remote?
    public var retryEpoch: Int
    /// The release's base package replacements (fetched and checked when it is staged).
    public var replacements: [FleetPolicy.Replacement]

    public init(
        id: String, commit: String, refspec: String, remote: FleetPolicy.Remote? = nil, retryEpoch: Int = 0,
        replacements: [FleetPolicy.Replacement] = []
    ) {
        self.id = id
        self.commit = commit
        self.refspec = refspec
        self.remote = remote
        self.retryEpoch = retryEpoch
        self.replacements = replacements
    }
}

/// The sysroot's deployments as the driver compares them with a release.
public struct DeploymentFacts: Sendable, Equatable {
    /// The booted deployment's base commit (the default one's on a sysroot nothing booted).
    public var booted: String?
    /// The default (next boot) deployment's base commit.
    public var defaultCommit: String?
    /// Whether a deployment is staged.
    public var hasStaged: Bool

    public init(booted: String?, defaultCommit: String?, hasStaged: Bool) {
        self.booted = booted
        self.defaultCommit = defaultCommit
        self.hasStaged = hasStaged
    }
}

/// Everything ``DriverMachine/step(_:_:_:)`` may consult, read by the driver before each step.
/// A read that failed is nil: the step then does nothing that depended on it (fails closed).
public struct DriverFacts: Sendable, Equatable {
    public var now: Date
    /// This boot (`/proc/sys/kernel/random/boot_id`).
    public var bootID: String
    /// The policy's release for this host's stream (nil: no policy, or no release).
    public var release: ReleaseOrder?
    /// Where the host stands under the policy in force, local windows applied (nil: no policy).
    public var explanation: PolicyExplanation?
    /// Whether `release` is denylisted here (nil: the denylist could not be read).
    public var denylisted: Bool?
    /// Reboots journaled into `release` since it was last healthy (nil: could not be read).
    public var releaseAttempts: Int?
    /// The sysroot's deployments (nil: could not be read).
    public var deployments: DeploymentFacts?
    /// The FleetLock group this host asks in (nil: the policy has no FleetLock server).
    public var lockGroup: String?
    public var maxAttempts: Int
    /// The last fetch's message, for the reason of `idle`.
    public var lastFetch: String?
    /// Whether the policy names pre-reboot / post-boot hooks.
    public var hasPreRebootHooks = false
    public var hasPostBootHooks = false
    /// Until when a failed pre-reboot hook postpones asking for a reboot slot (nil: not postponed).
    public var rebootPostponedUntil: Date?

    public init(
        now: Date, bootID: String, release: ReleaseOrder?, explanation: PolicyExplanation?, denylisted: Bool?, releaseAttempts: Int?,
        deployments: DeploymentFacts?, lockGroup: String?, maxAttempts: Int, lastFetch: String? = nil
    ) {
        self.now = now
        self.bootID = bootID
        self.release = release
        self.explanation = explanation
        self.denylisted = denylisted
        self.releaseAttempts = releaseAttempts
        self.deployments = deployments
        self.lockGroup = lockGroup
        self.maxAttempts = maxAttempts
        self.lastFetch = lastFetch
    }
}

/// What the FleetLock server said to a request for a slot.
public enum SlotAnswer: Sendable, Equatable {
    case granted
    /// Refused (the server's kind and value: no free slot).
    case refused(String)
    /// The server could not be reached or answered with an error.
    case unreachable(String)
}

/// Why the driver steps: time passed (or a poll ended), a poll is about to start, or an effect
/// ended with this outcome.
public enum DriverEvent: Sendable, Equatable {
    /// Look again (a timer, the end of a poll, a state just moved).
    case tick
    /// A policy fetch starts: steady states show `checking`.
    case pollStarting
    /// A policy fetch ended: a release on its way is reconsidered.
    case polled
    /// The staging transaction ended (its id, or why it failed).
    case staged(Result<String, DriverFailure>)
    /// The FleetLock server's answer to `pre-reboot` in `group`.
    case slotAsked(SlotAnswer, group: String)
    /// The slot was given back (false: the server did not confirm).
    case slotReleased(Bool)
    /// Finalization was unlocked (nil), or why not.
    case finalized(DriverFailure?)
    /// The reboot command ran (false: it failed).
    case rebootRan(Bool)
    /// The health checks' verdict: nil when healthy, else why not.
    case verified(unhealthy: String?)
    /// The rollback transaction ended (nil: it succeeded).
    case rolledBack(DriverFailure?)
    /// The pre-reboot hooks ended (nil: all succeeded; else the first failure).
    case preRebootHooksRan(failure: String?)
    /// The post-boot hooks ended (nil: all succeeded; else the first failure).
    case postBootHooksRan(failure: String?)
}

/// What the driver does after the journal has committed the step's state.
public enum DriverEffect: Sendable, Equatable {
    /// Configure the release's remote, pull, re-apply the layered packages, stage locked.
    case stage(ReleaseOrder)
    /// Ask the FleetLock server for a slot (`pre-reboot`) in `group`.
    case askSlot(group: String)
    /// Give the slot back (`steady-state`) in `group`.
    case releaseSlot(group: String)
    /// Unlock the staged deployment.
    case finalize
    /// Run the reboot command.
    case reboot
    /// Run the policy's health checks until they pass for the settle time, fail, or time out.
    case verify
    /// Make the previous deployment the default.
    case rollBack
    /// Run the policy's pre-reboot hooks (drain), holding the slot.
    case runPreRebootHooks
    /// Run the policy's post-boot hooks (rejoin).
    case runPostBootHooks
}

/// One step's outcome: the state to journal (nil: unchanged), a denylist entry journaled in the
/// same SQLite transaction, at most one effect to run after the commit, or why the driver must
/// pause and retry (a fact it needed could not be read, or an effect that must succeed failed;
/// then no effect).
public struct DriverDecision: Sendable, Equatable {
    public var next: DriverSnapshot?
    public var denylist: DenylistRecord?
    public var effect: DriverEffect?
    public var blocked: String?

    public init(next: DriverSnapshot? = nil, denylist: DenylistRecord? = nil, effect: DriverEffect? = nil, blocked: String? = nil) {
        self.next = next
        self.denylist = denylist
        self.effect = effect
        self.blocked = blocked
    }

    /// Nothing to do.
    public static let none = DriverDecision()
    /// Nothing done because `why` could not be read.
    public static func blocked(_ why: String) -> DriverDecision { DriverDecision(blocked: why) }
}
