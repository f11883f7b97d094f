import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import APTLayerTransaction
import Foundation

extension UpdateDriver {
    /// After a start: finish what the journal says was under way. A new boot id in `rebooting`
    /// means the reboot happened; a healthy host whose slot is held or unknown gives it back.
    func resumeAfterStart() async {
        if record.state == .rebooting, record.bootID != bootID {
            if record.rolledBack {
                await finishRollback()
            } else {
                move(.verifying, "booted after finalizing release \(record.releaseId ?? "?")")
            }
            return
        }
        if [.idle, .upToDate, .healthy, .failed, .checking].contains(record.state), record.lockHeld != false {
            await releaseSlot(reason: "steady state at start")
        }
    }

    /// Moves the machine as far as it goes now.
    func advance() async {
        for _ in 0..<8 {
            let before = record
            switch record.state {
            case .updateAvailable, .staging: await stage()
            case .staged: move(.waiting, "staged; waiting for the wave start, a window and a reboot slot")
            case .waiting: await waitForSlot()
            case .finalizing: await finalize()
            case .rebooting: await rebootAgainIfStillUp()
            case .verifying: await verify()
            case .rollingBack: await rollBack()
            case .idle, .checking, .upToDate, .healthy, .failed: return
            }
            // Go on only when the state moved: a step that only updated its reason (a refused slot,
            // a closed window) waits for the next tick.
            if record.state == before.state { return }
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

    /// `update-available` / `staging`: configure the policy's remote, pull the pinned commit,
    /// re-apply the layered packages and stage it with finalization locked.
    func stage() async {
        guard let policy = policy?.policy, let stream = policy.streams[configuration.stream], let release = stream.release,
            release.id == record.releaseId, release.commit == record.commit
        else {
            move(.checking, "the release changed before staging")
            decide()
            return
        }
        let previous = currentBase()
        move(.staging, "staging release \(release.id) (\(release.commit.prefix(12)))") { r in r.previousCommit = previous }
        var refspec = stream.ref
        if let remote = policy.remote {
            do {
                _ = try await Engine.run { [engineOptions] _ in try Engine(options: engineOptions).setRemote(name: remote.name, url: remote.url) }
            } catch {
                // The engine's message names the remote and the operation once.
                move(.failed, error.message)
                return
            }
            refspec = "\(remote.name):\(stream.ref)"
        }
        let flags = LayeringFlags(idempotent: true, lockFinalization: true)
        switch await transact(.rebase(ref: refspec, target: release.commit, flags: flags)) {
        case .success(let txn):
            move(.staged, "release \(release.id) staged by transaction \(txn.id)")
        case .failure(let failure):
            move(.failed, "staging release \(release.id) failed: \(failure.message)")
        }
    }

    /// `waiting`: the wave start, a window (the policy's and the local one), then a slot.
    func waitForSlot() async {
        guard let explanation = explain() else { return }
        if explanation.waitingFor == .upToDate {
            move(.checking, "the host already runs release \(explanation.release ?? "")")
            decide()
            return
        }
        countMissedWindows(explanation)
        guard explanation.waitingFor == nil || explanation.waitingFor == .lockBusy else {
            if record.lockHeld == true && explanation.waitingFor == .outsideWindow {
                // The window closed before the reboot started: give the unused slot back.
                await releaseSlot(reason: "the window closed before the reboot")
            }
            if record.reason != explanation.reason { move(.waiting, explanation.reason) }
            return
        }
        if record.lockHeld != true {
            guard let lock = lockClient(wave: explanation.wave) else {
                move(.finalizing, "eligible and inside a window (no FleetLock server)")
                return
            }
            move(.waiting, "asking \(lock.base) for a reboot slot") { r in
                r.lockHeld = nil
                r.lockGroup = lock.group
            }
            do {
                switch try await lock.preReboot() {
                case .granted:
                    lockBusy = false
                    move(.waiting, "reboot slot granted") { r in r.lockHeld = true }
                case .refused(let kind, let value):
                    lockBusy = true
                    try? journal.increment(.rebootSlotWaits)
                    move(.waiting, "no reboot slot: \(kind): \(value)") { r in r.lockHeld = false }
                    return
                }
            } catch {
                lockBusy = true
                move(.waiting, "FleetLock unreachable: \(error.message)") { r in r.lockHeld = false }
                return
            }
        }
        move(.finalizing, "reboot slot held; finalizing release \(record.releaseId ?? "")")
    }

    /// The FleetLock client, in the group recorded when the slot was asked for (else the policy's,
    /// which may depend on the host's wave); nil without a FleetLock server.
    func lockClient(wave: @autoclosure () -> String?) -> FleetLockClient? {
        guard let policy = policy?.policy, let base = policy.reboot?.fleetlock else { return nil }
        let group = record.lockGroup ?? policy.reboot?.group(wave: wave()) ?? "default"
        return FleetLockClient(client: http, base: base, id: hostID, group: group)
    }

    /// Gives the slot back (`steady-state`) when it is held or unknown.
    func releaseSlot(reason: String) async {
        guard record.lockHeld != false else { return }
        guard let lock = lockClient(wave: explain()?.wave) else {
            move(record.state, record.reason) { r in r.lockHeld = false }
            return
        }
        do {
            if case .granted = try await lock.steadyState() {
                move(record.state, record.reason) { r in r.lockHeld = false }
                logger.info("reboot slot released", metadata: ["why": "\(reason)"])
            }
        } catch {
            logger.warning("reboot slot not released", metadata: ["error": "\(error.message)"])
        }
    }

    /// `finalizing`: unlock the staged deployment and reboot into it, unless this release has
    /// already used every attempt.
    func finalize() async {
        guard record.attempts < configuration.maxAttempts else {
            await giveUp("release \(record.releaseId ?? "") did not come up healthy in \(record.attempts) reboot(s)")
            return
        }
        let commits = try? await Engine.run { [engineOptions] _ in try Engine(options: engineOptions).baseCommits() }
        if commits?.hasStaged == true {
            if case .failure(let failure) = await transact(.finalize) {
                move(.failed, "finalizing failed: \(failure.message)")
                await releaseSlot(reason: "finalizing failed")
                return
            }
        }
        move(.rebooting, "rebooting into release \(record.releaseId ?? "")") { r in r.attempts += 1 }
        await runReboot()
    }

    /// `rebooting` in the same boot: the reboot has not happened (the command failed, or the agent
    /// was killed before it ran): run it again, 5 s after the last try.
    func rebootAgainIfStillUp() async {
        guard record.bootID == bootID else { return }
        // During a real shutdown systemd does not restart the agent; a restart in the same boot
        // means the command never ran or failed.
        guard Date().timeIntervalSince(record.since) > 5 else { return }
        move(.rebooting, record.reason)
        await runReboot()
    }

    func runReboot() async {
        let command = configuration.rebootCommand
        logger.notice("rebooting", metadata: ["command": "\(command.joined(separator: " "))"])
        let result = await HealthChecker.program(command, timeout: 120)
        if result.status != 0 {
            logger.error("reboot command failed", metadata: ["status": "\(result.status)", "output": "\(result.output.suffix(300))"])
        }
    }

    /// `verifying`: the booted commit must be the release's (else the bootloader fell back), then
    /// every check must pass within the timeout and keep passing for the settle time.
    func verify() async {
        guard let commit = record.commit else { return }
        let booted = currentBase()
        guard booted == commit else {
            move(.rollingBack, "booted \(booted?.prefix(12) ?? "nothing") instead of \(commit.prefix(12)): the bootloader fell back")
            return
        }
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
        guard !Task.isCancelled else { return }
        if failing.isEmpty {
            move(.healthy, "release \(record.releaseId ?? "") is healthy") { r in r.attempts = 0 }
            await releaseSlot(reason: "healthy boot")
        } else {
            let why = failing.map { "\($0.check): \($0.detail)" }.joined(separator: "; ")
            move(.rollingBack, "unhealthy: \(why)")
        }
    }

    /// `rolling-back`: the previous deployment becomes the default and the host reboots into it,
    /// still holding its slot (a failure counts against the fleet's budget).
    func rollBack() async {
        let cause = record.reason
        let commits = try? await Engine.run { [engineOptions] _ in try Engine(options: engineOptions).baseCommits() }
        guard commits?.booted == record.commit else {
            // Not running the release (the bootloader fell back): no reboot needed, but the
            // release must not stay the default, or the next reboot would boot it again.
            if commits?.default == record.commit, case .failure(let failure) = await transact(.rollback) {
                move(.failed, "rollback after a bootloader fallback failed: \(failure.message)")
                return
            }
            await giveUp("release \(record.releaseId ?? "") not booted: \(cause)")
            return
        }
        switch await transact(.rollback) {
        case .success:
            move(.rebooting, "rolled back from release \(record.releaseId ?? "") (\(cause)); rebooting into the previous deployment") { r in
                r.rolledBack = true
            }
            await runReboot()
        case .failure(let failure):
            move(.failed, "rollback failed: \(failure.message)")
        }
    }

    /// After the rollback reboot (or a bootloader fallback): denylist the release, give the slot
    /// back, report.
    func finishRollback() async {
        // The reason of `rebooting` carries the cause: "rolled back from release X (unhealthy: …); …".
        await giveUp("release \(record.releaseId ?? "") failed verification and was rolled back: \(record.reason)")
    }

    private func giveUp(_ reason: String) async {
        if let id = record.releaseId, let commit = record.commit {
            let epoch = policy?.policy.streams[configuration.stream]?.release.flatMap { $0.id == id ? $0.retryEpoch : nil } ?? 0
            try? journal.denylist(DenylistRecord(releaseId: id, commit: commit, retryEpoch: epoch, at: Date(), reason: reason))
            logger.warning("release denylisted", metadata: ["release": "\(id)", "reason": "\(reason)"])
        }
        move(.failed, reason) { r in r.rolledBack = false }
        await releaseSlot(reason: "release given up")
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
