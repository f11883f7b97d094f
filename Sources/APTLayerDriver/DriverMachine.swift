import APTLayerFleet
import APTLayerJournal
import Foundation

/// The update driver's decisions, as one pure function: from the journaled state, an event and
/// the facts read just before, the next state to journal and the one effect to run after the
/// journal committed it. No I/O, no clock: the driver (``UpdateDriver``) reads the facts, commits
/// `next` (with a denylist entry in the same SQLite transaction), and only then runs the effect,
/// whose outcome is the next event. docs/fleet.md draws the machine.
public enum DriverMachine {
    /// One step. A step that needs a fact that could not be read does nothing (`blocked`).
    public static func step(_ current: DriverSnapshot, _ event: DriverEvent, _ facts: DriverFacts) -> DriverDecision {
        let stepper = Stepper(current: current, facts: facts)
        return stepper.step(event)
    }
}

/// One step's context: the snapshot, the facts, and helpers that build decisions.
private struct Stepper {
    let current: DriverSnapshot
    let facts: DriverFacts
    var state: DriverState { current.state }

    /// The snapshot after a move; nil when nothing but the time would change (unless `force`).
    func snapshot(_ state: DriverState, _ reason: String, slot: SlotHold? = nil, force: Bool = false) -> DriverSnapshot? {
        let next = DriverSnapshot(state: state, slot: slot ?? current.slot, reason: reason, since: facts.now, bootID: facts.bootID)
        if !force && next.state == current.state && next.slot == current.slot && next.reason == current.reason && next.bootID == current.bootID {
            return nil
        }
        return next
    }

    func move(_ state: DriverState, _ reason: String, slot: SlotHold? = nil, effect: DriverEffect? = nil) -> DriverDecision {
        DriverDecision(next: snapshot(state, reason, slot: slot), effect: effect)
    }

    /// `failed`, with the release denylisted in the same journal transaction.
    func giveUp(_ rollout: Rollout, _ reason: String) -> DriverDecision {
        let release = facts.release
        let epoch = rollout.isRelease(release) ? release?.retryEpoch ?? 0 : 0
        let entry = DenylistRecord(releaseId: rollout.releaseId, commit: rollout.commit, retryEpoch: epoch, at: facts.now, reason: reason)
        return DriverDecision(next: snapshot(.failed(last: rollout), reason), denylist: entry)
    }

    func step(_ event: DriverEvent) -> DriverDecision {
        switch event {
        case .tick: return look()
        case .pollStarting:
            guard state.isSteady else { return .none }
            return move(.checking(last: state.rollout), "fetching the policy")
        case .polled:
            // `checking` decides once the fetch has ended (not before: the policy may be new).
            if case .checking(let last) = state { return decide(last) }
            // A new policy while a release is on its way: another release (or none) starts over.
            guard [.updateAvailable, .staged, .waiting].contains(state.kind), let r = state.rollout, !r.isRelease(facts.release) else {
                return look()
            }
            return move(.checking(last: r), "the policy now pins \(facts.release.map { "release \($0.id)" } ?? "no release")")
        case .staged(let result):
            guard case .staging(let r) = state else { return .none }
            switch result {
            case .success(let id): return move(.staged(r), "release \(r.releaseId) staged by transaction \(id)")
            case .failure(let failure): return move(.failed(last: r), "staging release \(r.releaseId) failed: \(failure.message)")
            }
        case .slotAsked(let answer, let group):
            guard case .waiting(let r) = state else { return .none }
            switch answer {
            case .granted:
                return move(.finalizing(r), "reboot slot granted; finalizing release \(r.releaseId)", slot: .held(group: group))
            case .refused(let why):
                return move(.waiting(r), "no reboot slot: \(why)", slot: .free)
            case .unreachable(let why):
                // The request may have been granted before the answer was lost: the slot stays
                // unknown (released on any path out), not free.
                return move(.waiting(r), "FleetLock unreachable: \(why)", slot: .unknown(group: group))
            }
        case .slotReleased(let released):
            guard released else { return .none }
            return move(state, current.reason, slot: .free)
        case .finalized(let failure):
            guard case .finalizing(let r) = state else { return .none }
            if let failure { return move(.failed(last: r), "finalizing failed: \(failure.message)") }
            return rebootIntoRelease(r)
        case .rebootRan: return .none
        case .verified(let unhealthy):
            guard case .verifying(let r) = state else { return .none }
            if let unhealthy { return move(.rollingBack(r), "unhealthy: \(unhealthy)") }
            if facts.hasPostBootHooks {
                return move(.verifying(r), "release \(r.releaseId) passed its health checks; running the post-boot hooks", effect: .runPostBootHooks)
            }
            return healthy(r, "release \(r.releaseId) is healthy")
        case .postBootHooksRan(let failure):
            guard case .verifying(let r) = state else { return .none }
            // The release passed its health checks: a hook that cannot rejoin the host (its
            // workload's control plane may be down) is reported, not a reason to roll back.
            return healthy(r, "release \(r.releaseId) is healthy" + (failure.map { "; post-boot hook failed: \($0)" } ?? ""))
        case .preRebootHooksRan(let failure):
            guard case .finalizing(let r) = state else { return .none }
            guard let failure else { return finalizeOrReboot(r) }
            // The host could not be drained: no reboot now. The slot goes back; the driver asks
            // again after the policy's hook-retry.
            let why = "pre-reboot hook failed: \(failure); reboot postponed"
            if current.slot != .free, let policyGroup = facts.lockGroup {
                let group = current.slot.group ?? policyGroup
                return move(.waiting(r), why, slot: .unknown(group: group), effect: .releaseSlot(group: group))
            }
            return move(.waiting(r), why, slot: .free)
        case .rolledBack(let failure):
            guard case .rollingBack(let r) = state else { return .none }
            // The release failed its checks: giving up here would leave the host on it. The
            // rollback is tried again, after the driver's backoff, until it succeeds.
            if let failure {
                let why = "rollback failed: \(failure.message); trying again"
                return DriverDecision(next: snapshot(.rollingBack(r), why), blocked: why)
            }
            return look()
        }
    }

    func healthy(_ r: Rollout, _ reason: String) -> DriverDecision {
        var done = r
        done.attempts = 0
        return move(.healthy(done), reason)
    }

    /// Unlocks the staged deployment, or reboots into it when nothing is staged any more.
    func finalizeOrReboot(_ r: Rollout) -> DriverDecision {
        guard let deployments = facts.deployments else { return .blocked("the deployments cannot be read") }
        if deployments.hasStaged { return DriverDecision(effect: .finalize) }
        return rebootIntoRelease(r)
    }

    func rebootIntoRelease(_ r: Rollout) -> DriverDecision {
        var next = r
        next.attempts += 1
        return move(.rebooting(next, into: .release), "rebooting into release \(r.releaseId)", effect: .reboot)
    }

    /// What the state asks for now, given the facts.
    func look() -> DriverDecision {
        // A new boot id in `rebooting`: the reboot happened.
        if case .rebooting(let r, let target) = state, current.bootID != facts.bootID {
            switch target {
            case .release: return move(.verifying(r), "booted after finalizing release \(r.releaseId)")
            case .previousDeployment:
                return giveUp(r, "release \(r.releaseId) failed verification and was rolled back: \(current.reason)")
            }
        }
        // A new boot while verifying: the release rebooted the host by itself (a panic, a watchdog).
        // Each such boot counts as an attempt; at max-attempts it is rolled back.
        if case .verifying(let r) = state, current.bootID != facts.bootID {
            var next = r
            next.attempts += 1
            if next.attempts >= facts.maxAttempts {
                return move(.rollingBack(next), "release \(r.releaseId) rebooted by itself while verifying (\(next.attempts) boots)")
            }
            return move(.verifying(next), "release \(r.releaseId) rebooted by itself while verifying; checking again (boot \(next.attempts))")
        }
        if state.isSteady && current.slot != .free { return releaseSlot() }
        switch state {
        case .idle, .upToDate, .healthy, .failed: return .none
        // Decided when the poll that moved here has ended (`.polled`); the agent polls at start.
        case .checking: return .none
        case .updateAvailable(let r), .staging(let r): return stage(r)
        case .staged(let r): return move(.waiting(r), "staged; waiting for the wave start, a window and a reboot slot")
        case .waiting(let r): return wait(r)
        case .finalizing(let r): return finalize(r)
        case .rebooting:
            // Same boot: the command failed or never ran (a restart during a real shutdown does not
            // happen); again 5 s after the last try, journaled first.
            guard facts.now.timeIntervalSince(current.since) > 5 else { return .none }
            return DriverDecision(next: snapshot(state, current.reason, force: true), effect: .reboot)
        case .verifying(let r):
            guard let deployments = facts.deployments else { return .blocked("the deployments cannot be read") }
            guard deployments.booted == r.commit else {
                let booted = deployments.booted.map { String($0.prefix(12)) } ?? "nothing"
                return move(.rollingBack(r), "booted \(booted) instead of \(r.commit.prefix(12)): the bootloader fell back")
            }
            return DriverDecision(effect: .verify)
        case .rollingBack(let r): return rollBack(r)
        }
    }

    /// Gives a held or unknown slot back; without a FleetLock server there is nothing to give.
    func releaseSlot() -> DriverDecision {
        guard let policyGroup = facts.lockGroup else { return move(state, current.reason, slot: .free) }
        let group = current.slot.group ?? policyGroup
        // Journaled as unknown first: a crash during the release leaves it to be released again.
        return move(state, current.reason, slot: .unknown(group: group), effect: .releaseSlot(group: group))
    }

    /// From `checking`: what the policy in force asks of this host.
    func decide(_ last: Rollout?) -> DriverDecision {
        guard let explanation = facts.explanation else {
            return move(.idle(last: last), facts.lastFetch.map { "no accepted policy (\($0))" } ?? "no accepted policy")
        }
        switch explanation.waitingFor {
        case .policyExpired, .noRelease, .upToDate, .denylisted, .notInAnyWave, .noPolicy:
            return move(.upToDate(last: last), explanation.reason)
        default:
            guard let release = facts.release else { return move(.upToDate(last: last), explanation.reason) }
            guard let denylisted = facts.denylisted else { return .blocked("the denylist cannot be read") }
            if denylisted { return move(.upToDate(last: last), "release \(release.id) is denylisted on this host") }
            // A release keeps its attempt counter, also after the policy pinned another one.
            guard let recorded = facts.releaseAttempts else { return .blocked("the release's reboot attempts cannot be read") }
            var rollout = last.flatMap { $0.isRelease(release) ? $0 : nil } ?? Rollout(releaseId: release.id, commit: release.commit)
            rollout.attempts = max(rollout.attempts, recorded)
            return move(.updateAvailable(rollout), "release \(release.id) is available")
        }
    }

    /// `update-available` / `staging`: stage the release (again, after a restart in `staging`).
    func stage(_ r: Rollout) -> DriverDecision {
        guard let release = facts.release, r.isRelease(release) else { return move(.checking(last: r), "the release changed before staging") }
        guard let denylisted = facts.denylisted else { return .blocked("the denylist cannot be read") }
        if denylisted { return move(.checking(last: r), "release \(release.id) is denylisted on this host") }
        var staging = r
        if case .updateAvailable = state { staging.previousCommit = facts.deployments?.booted }
        return move(.staging(staging), "staging release \(release.id) (\(release.commit.prefix(12)))", effect: .stage(release))
    }

    /// `waiting`: the wave start, a window (the policy's and the local one), then a slot.
    func wait(_ r: Rollout) -> DriverDecision {
        guard let explanation = facts.explanation else { return .none }
        if explanation.waitingFor == .upToDate { return move(.checking(last: r), "the host already runs release \(explanation.release ?? "")") }
        if !r.isRelease(facts.release) { return move(.checking(last: r), "the policy no longer pins release \(r.releaseId)") }
        if let until = facts.rebootPostponedUntil, until > facts.now {
            // A pre-reboot hook failed: the reason says so until the driver asks again.
            return .none
        }
        if let waitingFor = explanation.waitingFor, waitingFor != .lockBusy {
            if waitingFor == .outsideWindow && current.slot != .free, let policyGroup = facts.lockGroup {
                // The window closed before the reboot started: give the unused slot back.
                let group = current.slot.group ?? policyGroup
                return move(.waiting(r), explanation.reason, slot: .unknown(group: group), effect: .releaseSlot(group: group))
            }
            return move(.waiting(r), explanation.reason)
        }
        if case .held = current.slot { return move(.finalizing(r), "reboot slot held; finalizing release \(r.releaseId)") }
        guard let policyGroup = facts.lockGroup else { return move(.finalizing(r), "eligible and inside a window (no FleetLock server)") }
        let group = current.slot.group ?? policyGroup
        return move(.waiting(r), "asking for a reboot slot in group \(group)", slot: .unknown(group: group), effect: .askSlot(group: group))
    }

    /// `finalizing`: unlock the staged deployment, then reboot into it, unless the release has
    /// used every attempt.
    func finalize(_ r: Rollout) -> DriverDecision {
        guard r.attempts < facts.maxAttempts else {
            return giveUp(r, "release \(r.releaseId) did not come up healthy in \(r.attempts) reboot(s)")
        }
        if facts.hasPreRebootHooks {
            // Drain first (again after a restart here: hooks must be safe to repeat).
            return move(.finalizing(r), "running the pre-reboot hooks before release \(r.releaseId)'s reboot", effect: .runPreRebootHooks)
        }
        return finalizeOrReboot(r)
    }

    /// `rolling-back`: the previous deployment becomes the default, then the host reboots into it
    /// (still holding its slot); when the release is not running (the bootloader fell back) only
    /// the default changes and the release is given up.
    func rollBack(_ r: Rollout) -> DriverDecision {
        guard let deployments = facts.deployments else { return .blocked("the deployments cannot be read") }
        // The rollback is done once: a restart after it sees the release no longer the default.
        if deployments.defaultCommit == r.commit { return DriverDecision(effect: .rollBack) }
        guard deployments.booted == r.commit else { return giveUp(r, "release \(r.releaseId) not booted: \(current.reason)") }
        return move(
            .rebooting(r, into: .previousDeployment),
            "rolled back from release \(r.releaseId) (\(current.reason)); rebooting into the previous deployment", effect: .reboot)
    }
}
