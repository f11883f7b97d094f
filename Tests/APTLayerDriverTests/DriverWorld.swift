import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport

@testable import APTLayerDriver
@testable import APTLayerFleet

/// Building blocks for the driver's tests: releases, rollouts, snapshots, facts and explanations.
enum World {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let release1 = ReleaseOrder(id: "2026.12.1", commit: String(repeating: "1", count: 64), refspec: "acme:debian/12/x86_64/vm")
    static let release2 = ReleaseOrder(id: "2026.12.2", commit: String(repeating: "2", count: 64), refspec: "acme:debian/12/x86_64/vm")
    static let base = String(repeating: "0", count: 64)

    static func rollout(_ release: ReleaseOrder = release1, attempts: Int = 0) -> Rollout {
        Rollout(releaseId: release.id, commit: release.commit, previousCommit: base, attempts: attempts)
    }

    static func snapshot(_ state: DriverState, slot: SlotHold = .free, reason: String = "before", since: Date = t0, boot: String = "boot-1")
        -> DriverSnapshot
    {
        DriverSnapshot(state: state, slot: slot, reason: reason, since: since, bootID: boot)
    }

    /// An explanation waiting for `reason` (nil: nothing stands in the way) for `release`.
    static func explanation(_ reason: WaitReason?, release: ReleaseOrder? = release1) -> PolicyExplanation {
        PolicyExplanation(
            fleet: "acme", policyVersion: 1, stream: "stable", hostId: "h", bucket: 1, wave: "canary", waveIndex: 0, eligibleAt: t0,
            eligible: reason == nil || reason == .outsideWindow || reason == .lockBusy, release: release?.id, commit: release?.commit,
            windowOpen: reason != .outsideWindow, nextWindow: nil, waitingFor: reason, reason: reason.map { "waiting: \($0.rawValue)" } ?? "eligible")
    }

    /// `facts` of a policy with pre-reboot and post-boot hooks, postponed until `postponedUntil`.
    static func hooked(_ facts: DriverFacts, postponedUntil: Date? = nil) -> DriverFacts {
        var f = facts
        f.hasPreRebootHooks = true
        f.hasPostBootHooks = true
        f.rebootPostponedUntil = postponedUntil
        return f
    }

    static func facts(
        now: Date = t0.addingTimeInterval(60), boot: String = "boot-1", release: ReleaseOrder? = release1, waitingFor: WaitReason? = nil,
        policy: Bool = true, denylisted: Bool? = false, releaseAttempts: Int? = 0,
        deployments: DeploymentFacts? = DeploymentFacts(booted: base, defaultCommit: base, hasStaged: false),
        lockGroup: String? = "workers", maxAttempts: Int = 3
    ) -> DriverFacts {
        DriverFacts(
            now: now, bootID: boot, release: release, explanation: policy ? explanation(waitingFor, release: release) : nil, denylisted: denylisted,
            releaseAttempts: releaseAttempts, deployments: deployments, lockGroup: lockGroup, maxAttempts: maxAttempts,
            lastFetch: "accepted version 1")
    }

    /// Deployments as they are with `commit` booted and `defaultCommit` next.
    static func deployments(booted: String?, defaultCommit: String?, staged: Bool = false) -> DeploymentFacts {
        DeploymentFacts(booted: booted, defaultCommit: defaultCommit, hasStaged: staged)
    }
}
