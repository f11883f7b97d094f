import APTLayerJournal
import APTLayerModel
import Foundation

/// The release a rollout is about, and what the driver must remember of it across every state,
/// restarts and reboots included.
public struct Rollout: Sendable, Equatable {
    public var releaseId: String
    public var commit: String
    /// The base commit the release replaces (known once staging began).
    public var previousCommit: String?
    /// Reboots into this release so far: the persistent counter that ends reboot loops.
    public var attempts: Int

    public init(releaseId: String, commit: String, previousCommit: String? = nil, attempts: Int = 0) {
        self.releaseId = releaseId
        self.commit = commit
        self.previousCommit = previousCommit
        self.attempts = attempts
    }

    /// Whether this is the same release (id and commit) as `release`.
    public func isRelease(_ release: ReleaseOrder?) -> Bool { release?.id == releaseId && release?.commit == commit }
}

/// Which deployment a reboot goes to.
public enum RebootTarget: Sendable, Equatable {
    /// The staged release (one more attempt counted).
    case release
    /// The previous deployment, after a rollback away from the release.
    case previousDeployment
}

/// Whether this host holds a FleetLock reboot slot.
public enum SlotHold: Sendable, Equatable {
    /// No slot.
    case free
    /// Unknown: a request or a release was under way when the record was written (a crash there
    /// leaves it so); treated as held until the server confirms a release.
    case unknown(group: String?)
    /// A slot in `group`.
    case held(group: String?)

    /// The group the slot was asked for in, if known.
    public var group: String? {
        switch self {
        case .free: nil
        case .unknown(let group), .held(let group): group
        }
    }
}

/// The update driver's state with the data each state needs: a rollout is carried by every state
/// that acts on a release, and remembered by the others (for its attempt counter).
public enum DriverState: Sendable, Equatable {
    case idle(last: Rollout?)
    case checking(last: Rollout?)
    case upToDate(last: Rollout?)
    case updateAvailable(Rollout)
    case staging(Rollout)
    case staged(Rollout)
    case waiting(Rollout)
    case finalizing(Rollout)
    case rebooting(Rollout, into: RebootTarget)
    case verifying(Rollout)
    case healthy(Rollout?)
    case rollingBack(Rollout)
    case failed(last: Rollout?)

    /// The state's name (the journal's, the API's and the metrics').
    public var kind: UpdateState {
        switch self {
        case .idle: .idle
        case .checking: .checking
        case .upToDate: .upToDate
        case .updateAvailable: .updateAvailable
        case .staging: .staging
        case .staged: .staged
        case .waiting: .waiting
        case .finalizing: .finalizing
        case .rebooting: .rebooting
        case .verifying: .verifying
        case .healthy: .healthy
        case .rollingBack: .rollingBack
        case .failed: .failed
        }
    }

    /// The rollout this state carries or remembers.
    public var rollout: Rollout? {
        switch self {
        case .idle(let r), .checking(let r), .upToDate(let r), .healthy(let r), .failed(let r): r
        case .updateAvailable(let r), .staging(let r), .staged(let r), .waiting(let r), .finalizing(let r), .verifying(let r),
            .rollingBack(let r), .rebooting(let r, _):
            r
        }
    }

    /// Steady states: nothing is under way; a slot still held is given back.
    public var isSteady: Bool { [.idle, .upToDate, .healthy, .failed].contains(kind) }
}

/// What the journal's `fleet_driver` row holds: the state, the slot, why, since when, in which boot.
public struct DriverSnapshot: Sendable, Equatable {
    public var state: DriverState
    public var slot: SlotHold
    public var reason: String
    public var since: Date
    public var bootID: String?

    public init(state: DriverState, slot: SlotHold, reason: String, since: Date, bootID: String?) {
        self.state = state
        self.slot = slot
        self.reason = reason
        self.since = since
        self.bootID = bootID
    }
}

/// A `fleet_driver` row that no ``DriverState`` can come from (a state that needs a release without
/// one): the driver refuses to act on it.
public struct UnreadableDriverRecord: Error, Sendable, Equatable, CustomStringConvertible {
    public let state: UpdateState
    public var description: String { "the journaled driver state \(state.rawValue) names no release" }
}

extension DriverSnapshot {
    /// Reads a journal row (rows written before states carried data decode the same way).
    public init(_ record: DriverRecord) throws {
        var rollout: Rollout?
        if let id = record.releaseId, let commit = record.commit {
            rollout = Rollout(releaseId: id, commit: commit, previousCommit: record.previousCommit, attempts: record.attempts)
        }
        func required() throws -> Rollout {
            guard let rollout else { throw UnreadableDriverRecord(state: record.state) }
            return rollout
        }
        let state: DriverState =
            switch record.state {
            case .idle: .idle(last: rollout)
            case .checking: .checking(last: rollout)
            case .upToDate: .upToDate(last: rollout)
            case .updateAvailable: .updateAvailable(try required())
            case .staging: .staging(try required())
            case .staged: .staged(try required())
            case .waiting: .waiting(try required())
            case .finalizing: .finalizing(try required())
            case .rebooting: .rebooting(try required(), into: record.rolledBack ? .previousDeployment : .release)
            case .verifying: .verifying(try required())
            case .healthy: .healthy(rollout)
            case .rollingBack: .rollingBack(try required())
            case .failed: .failed(last: rollout)
            }
        let slot: SlotHold =
            switch record.lockHeld {
            case true?: .held(group: record.lockGroup)
            case false?: .free
            case nil: .unknown(group: record.lockGroup)
            }
        self.init(state: state, slot: slot, reason: record.reason, since: record.since, bootID: record.bootID)
    }

    /// The journal row for this snapshot.
    public var record: DriverRecord {
        var record = DriverRecord(state: state.kind, reason: reason, since: since)
        if let rollout = state.rollout {
            record.releaseId = rollout.releaseId
            record.commit = rollout.commit
            record.previousCommit = rollout.previousCommit
            record.attempts = rollout.attempts
        }
        if case .rebooting(_, .previousDeployment) = state { record.rolledBack = true }
        switch slot {
        case .free: record.lockHeld = false
        case .unknown(let group):
            record.lockHeld = nil
            record.lockGroup = group
        case .held(let group):
            record.lockHeld = true
            record.lockGroup = group
        }
        record.bootID = bootID
        return record
    }
}
