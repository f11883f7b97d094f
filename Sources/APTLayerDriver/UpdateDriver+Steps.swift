import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import APTLayerTransaction
import Foundation

extension UpdateDriver: DriverRunning {
    func save(_ next: DriverSnapshot, denylisting entry: DenylistRecord?) throws {
        try journal.saveDriver(next.record, denylisting: entry)
    }

    /// The journal has the new state: the driver's memory follows.
    func commit(_ next: DriverSnapshot, from current: DriverSnapshot, denylisted: DenylistRecord?) {
        snapshot = next
        if let denylisted {
            logger.warning("release denylisted", metadata: ["release": "\(denylisted.releaseId)", "reason": "\(denylisted.reason)"])
        }
        let from = current.state.kind
        let to = next.state.kind
        guard from != to else { return }
        if to != .waiting {
            windowsMissed = 0
            windowWasOpen = nil
            lockBusy = false
        }
        logger.info(
            "fleet driver \(from.rawValue) -> \(to.rawValue)", metadata: ["release": "\(record.releaseId ?? "")", "reason": "\(record.reason)"])
        // The release came up healthy: its boot is good, the menu stops counting.
        if to == .healthy {
            do {
                if try Engine(options: engineOptions).markBootGood() { logger.info("boot marked good: the boot counter is cleared") }
            } catch {
                logger.error("the boot counter could not be cleared", metadata: ["error": "\(error)"])
            }
        }
        // Crash tests: killed right after the state was journaled, before acting on it.
        FaultPoint.hit("driver-\(to.rawValue)")
    }

    /// The facts a step in `state` may consult. A read that fails is nil.
    func readFacts(for state: DriverState) async -> DriverFacts {
        let now = Date()
        let accepted = policy?.policy
        let stream = accepted?.streams[configuration.stream]
        var release: ReleaseOrder?
        var denylisted: Bool?
        var attempts: Int?
        if let accepted, let stream, let pinned = stream.release {
            // A release published as an image is pulled by its digest (from a stored bundle when
            // one holds it), not from the remote.
            let image = pinned.image.map(imageRefspec)
            let refspec = image ?? accepted.remote.map { "\($0.name):\(stream.ref)" } ?? stream.ref
            release = ReleaseOrder(
                id: pinned.id, commit: pinned.commit, refspec: refspec, remote: image == nil ? accepted.remote : nil,
                retryEpoch: pinned.retryEpoch ?? 0, replacements: pinned.replace ?? [])
            do {
                denylisted = try isDenylisted(pinned)
                attempts = try journal.attempts(releaseId: pinned.id, commit: pinned.commit)
            } catch {
                logger.error("fleet driver: the denylist cannot be read", metadata: ["error": "\(error)"])
            }
        } else {
            denylisted = false
            attempts = 0
        }
        var deployments: DeploymentFacts?
        if [.updateAvailable, .staging, .finalizing, .verifying, .rollingBack].contains(state.kind) {
            do {
                let commits = try await Engine.run { [engineOptions] _ in try Engine(options: engineOptions).baseCommits() }
                deployments = DeploymentFacts(booted: commits.booted ?? commits.default, defaultCommit: commits.default, hasStaged: commits.hasStaged)
            } catch {
                logger.error("fleet driver: the deployments cannot be read", metadata: ["error": "\(error)"])
            }
        }
        let explanation = explain(now: now, denylisted: denylisted ?? false)
        if let explanation, state.kind == .waiting { countMissedWindows(explanation) }
        let lockGroup = accepted?.reboot?.fleetlock == nil ? nil : (accepted?.reboot?.group(wave: explanation?.wave) ?? "default")
        var facts = DriverFacts(
            now: now, bootID: bootID, release: release, explanation: explanation, denylisted: denylisted, releaseAttempts: attempts,
            deployments: deployments,
            lockGroup: lockGroup, maxAttempts: configuration.maxAttempts, lastFetch: lastFetch?.message)
        facts.hasPreRebootHooks = !(accepted?.reboot?.preReboot ?? []).isEmpty
        facts.hasPostBootHooks = !(accepted?.reboot?.postBoot ?? []).isEmpty
        facts.rebootPostponedUntil = rebootPostponedUntil
        return facts
    }

    /// Runs one effect; its outcome is the next event.
    func perform(_ effect: DriverEffect) async -> DriverEvent {
        switch effect {
        case .stage(let release): return .staged(await stage(release))
        case .askSlot(let group):
            guard let lock = lockClient(group: group) else { return .slotAsked(.unreachable("the policy names no FleetLock server"), group: group) }
            do {
                switch try await lock.preReboot() {
                case .granted:
                    lockBusy = false
                    return .slotAsked(.granted, group: group)
                case .refused(let kind, let value):
                    lockBusy = true
                    try? journal.increment(.rebootSlotWaits)
                    return .slotAsked(.refused("\(kind): \(value)"), group: group)
                }
            } catch {
                lockBusy = true
                return .slotAsked(.unreachable(error.message), group: group)
            }
        case .releaseSlot(let group):
            guard let lock = lockClient(group: group) else { return .slotReleased(true) }
            do {
                if case .granted = try await lock.steadyState() {
                    logger.info("reboot slot released", metadata: ["group": "\(group)"])
                    return .slotReleased(true)
                }
                logger.warning("reboot slot not released: the FleetLock server refused")
            } catch {
                logger.warning("reboot slot not released", metadata: ["error": "\(error.message)"])
            }
            return .slotReleased(false)
        case .finalize:
            if case .failure(let failure) = await transact(.finalize) { return .finalized(failure) }
            return .finalized(nil)
        case .reboot: return .rebootRan(await runReboot())
        case .verify: return .verified(unhealthy: await verify())
        case .rollBack:
            if case .failure(let failure) = await transact(.rollback) { return .rolledBack(failure) }
            return .rolledBack(nil)
        case .runPreRebootHooks:
            let failure = await hookRunner.run(policy?.policy.reboot?.preReboot ?? [])
            if let failure {
                let retry = policy?.policy.reboot?.hookRetry?.seconds ?? 600
                rebootPostponedUntil = Date().addingTimeInterval(Double(retry))
                logger.warning("pre-reboot hook failed; reboot postponed", metadata: ["error": "\(failure)", "retry-seconds": "\(retry)"])
            } else {
                rebootPostponedUntil = nil
            }
            return .preRebootHooksRan(failure: failure)
        case .runPostBootHooks:
            let failure = await hookRunner.run(policy?.policy.reboot?.postBoot ?? [])
            if let failure { logger.warning("post-boot hook failed", metadata: ["error": "\(failure)"]) }
            return .postBootHooksRan(failure: failure)
        }
    }

    /// Runs one operation as an ordinary transaction of the agent and waits for its end.
    func transact(_ operation: HostOperation) async -> Result<TransactionRecord, DriverFailure> {
        let submitted: TransactionRecord
        do {
            submitted = try await transactions.submit(operation, requester: requester, role: "admin", wait: true).0
        } catch {
            return .failure(DriverFailure(error.description))
        }
        guard let finished = await transactions.finished(id: submitted.id) else {
            return .failure(DriverFailure("transaction \(submitted.id) vanished"))
        }
        guard finished.state == .succeeded else {
            return .failure(DriverFailure("\(operation.kind.rawValue) \(finished.state.rawValue): \(finished.error ?? "")"))
        }
        return .success(finished)
    }

    /// One transaction: configures the policy's remote, pulls the pinned commit, re-applies the
    /// layered packages and stages it with finalization locked; the transaction id, or why not.
    func stage(_ release: ReleaseOrder) async -> Result<String, DriverFailure> {
        let flags = LayeringFlags(idempotent: true, lockFinalization: true)
        // The release's replacements first: a .deb that cannot be fetched or is not the pinned one
        // fails the staging before anything is built.
        var digests: [String] = []
        for replacement in release.replacements {
            switch await fetch(replacement) {
            case .success(let digest): digests.append("sha256:\(digest)")
            case .failure(let failure): return .failure(failure)
            }
        }
        var result = await transact(.rebase(ref: release.refspec, target: release.commit, remoteURL: release.remote?.url, flags: flags)).map(\.id)
        if case .success = result, !digests.isEmpty {
            // Idempotent: a replacement the release's base already carries is dropped, not refused.
            result = await transact(.overrideReplace(packages: digests, fromRepo: nil, flags: flags)).map(\.id)
        }
        // Staging armed the boot counter with the agent's tries; the policy's take their place.
        if case .success = result, let tries = policy?.policy.reboot?.bootTries {
            let counter = BootCounter(sysroot: engineOptions.sysroot)
            if case .armed(_, let deployment) = counter.read().state {
                do { try counter.arm(tries: tries, deployment: deployment) } catch {
                    logger.error("the boot counter could not be armed with the policy's boot-tries", metadata: ["error": "\(error)"])
                }
            }
        }
        return result
    }

    /// The FleetLock client for `group`; nil without a FleetLock server.
    func lockClient(group: String) -> FleetLockClient? {
        guard let base = policy?.policy.reboot?.fleetlock else { return nil }
        return FleetLockClient(client: http, base: base, id: hostID, group: group)
    }

    /// Runs the reboot command; whether it exited 0.
    func runReboot() async -> Bool {
        let command = configuration.rebootCommand
        logger.notice("rebooting", metadata: ["command": "\(command.joined(separator: " "))"])
        let result = await HealthChecker.program(command, timeout: 120)
        if result.status != 0 {
            logger.error("reboot command failed", metadata: ["status": "\(result.status)", "output": "\(result.output.suffix(300))"])
        }
        return result.status == 0
    }

    /// Runs the policy's checks until they pass for the settle time (nil), fail during it, or
    /// never pass before the timeout (why, one line).
    func verify() async -> String? {
        let healthPolicy = policy?.policy.health
        let checks = healthPolicy?.checks ?? []
        let deadline = Date().addingTimeInterval(Double(healthPolicy?.timeout?.seconds ?? 600))
        let settle = Double(healthPolicy?.settle?.seconds ?? 60)
        var failing: [HealthChecker.Result] = []
        var passingSince: Date?
        while !Task.isCancelled {
            failing = await health.run(checks).filter { !$0.passed }
            let now = Date()
            if failing.isEmpty {
                if passingSince == nil { passingSince = now }
                if let since = passingSince, now.timeIntervalSince(since) >= settle { break }
            } else if passingSince != nil || now >= deadline {
                break  // failed during the settle time, or never passed in time
            }
            try? await Task.sleep(for: .milliseconds(Int(min(5, max(0.5, settle / 10)) * 1000)))
        }
        return failing.isEmpty ? nil : failing.map { "\($0.check): \($0.detail)" }.joined(separator: "; ")
    }
}

extension UpdateDriver {
    /// Counts maintenance windows that opened and closed while this host was eligible and waiting
    /// (a host stuck longer than its window: the `AptLayerUpdateStuckWaiting` alert).
    func countMissedWindows(_ explanation: PolicyExplanation) {
        guard explanation.eligible else {
            windowWasOpen = nil
            return
        }
        let open = explanation.windowOpen && explanation.waitingFor != .outsideWindow
        if windowWasOpen == true && !open { windowsMissed += 1 }
        windowWasOpen = open
    }
}
