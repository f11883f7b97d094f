import APTLayerModel
import Foundation
import Glibc
import OSTree

/// `apply-live`: the pending deployment's changes applied to the running system (rpm-ostree's
/// `apply-live`), through a transient overlay on `/usr` (``LiveOverlay``), by a helper in the
/// host's mount namespace (``LiveHelper``). The next boot boots the pending deployment exactly as
/// it was staged; the overlay and `/run/apt-layer/live.json` end with this boot. docs/apply-live.md.
extension Engine {
    /// Applies the pending deployment to the running system; `reset` goes back to the booted
    /// deployment's `/usr` (and removes `/etc` files the live applies wrote, where unedited).
    public func applyLive(reset: Bool = false, options live: LiveOptions = .init(), token: CancellationToken = .init()) throws -> ChangeResult {
        try locked("apply-live") { sysroot in try applyLive(sysroot, reset: reset, live: live, token: token) }
    }

    /// The booted deployment and its live state, or the one-line refusal of a host that cannot
    /// take a live apply (not booted, unlocked for development or hotfix).
    func livePreconditions(_ sysroot: Sysroot) throws -> (booted: Deployment, id: String, state: LiveState?) {
        guard options.sysroot == "/", let booted = sysroot.booted else {
            throw EngineError(.refused, "apply-live needs a booted host: \(options.sysroot) is not the running system")
        }
        switch booted.unlockState {
        case .development, .hotfix:
            throw EngineError(.refused, "apply-live: /usr is unlocked for \(booted.unlockState.rawValue) (ostree admin unlock); reboot first")
        case .none, .transient:
            break
        }
        let id = "\(booted.checksum).\(booted.serial)"
        return (booted, id, LiveFiles.state(booted: id))
    }

    /// Refuses `install --apply-live` on a host that cannot take it, before anything is built.
    func checkLiveable() throws {
        let sysroot = try openSysroot()
        _ = try livePreconditions(sysroot)
    }

    func applyLive(_ sysroot: Sysroot, reset: Bool, live: LiveOptions, token: CancellationToken) throws -> ChangeResult {
        let (booted, bootedID, state) = try livePreconditions(sysroot)
        let repo: Repo
        do { repo = try sysroot.repo() } catch { throw EngineError.wrap(error, "open repository") }
        let mine = deployments(sysroot, booted.osname)
        let target: String
        if reset {
            target = booted.checksum
        } else {
            guard let first = mine.first, !first.isSame(as: booted), let bootedIndex = mine.firstIndex(where: { $0.isSame(as: booted) }),
                bootedIndex > 0
            else {
                throw EngineError(.invalidArgument, "nothing to apply: no pending deployment (install --apply-live layers and applies in one step)")
            }
            target = first.checksum
        }
        if let inProgress = state?.inProgress, inProgress != target, !reset {
            throw EngineError(
                .refused,
                "apply-live was interrupted while applying \(inProgress.prefix(12)); run apply-live again while that deployment is pending, or apply-live --reset"
            )
        }
        let source = state?.commit ?? booted.checksum
        if source == target && state?.inProgress == nil {
            return ChangeResult(
                changed: false,
                summary: reset
                    ? "Nothing is applied live: /usr is the booted deployment's."
                    : "The pending deployment \(target.prefix(12)) is already applied live.")
        }
        let step = PackageDiff(from: try packages(ofCommit: source, repo: repo), to: try packages(ofCommit: target, repo: repo))
        let plan: LivePlan
        if state?.inProgress == target, var stored = LiveFiles.read(LivePlan.self, LiveFiles.plan), stored.target == target, stored.booted == bootedID
        {
            // Resuming: the same plan, whose /etc decisions were made before anything changed.
            stored.startServices = stored.startServices || live.startServices
            plan = stored
        } else {
            plan = try livePlan(
                repo, booted: booted, bootedID: bootedID, state: state, source: source, target: target, step: step, reset: reset, live: live)
        }
        progress.phase(reset ? "Resetting the live /usr to the booted deployment" : "Applying \(target.prefix(12)) live")
        var next = state ?? LiveState(booted: bootedID)
        next.inProgress = target
        next.phase = .planned
        do {
            try LiveFiles.write(plan, LiveFiles.plan)
            try LiveFiles.write(next, LiveFiles.state)
            // Keeps the objects of what /usr shows from a prune until the next boot.
            try repo.setRef(LiveFiles.ref, to: target)
        } catch {
            throw EngineError.wrap(error, "record the live apply")
        }
        try runLiveHelper(token: token)
        if reset { try? repo.setRef(LiveFiles.ref, to: nil) }
        let done = LiveFiles.state(booted: bootedID) ?? next
        return ChangeResult(changed: true, summary: Self.liveSummary(plan, done, reset: reset), diff: step)
    }

    /// Decides what a live apply from `source` to `target` does, refusing what it must not do.
    func livePlan(
        _ repo: Repo, booted: Deployment, bootedID: String, state: LiveState?, source: String, target: String, step: PackageDiff, reset: Bool,
        live: LiveOptions
    ) throws -> LivePlan {
        let bootedBase = baseChecksum(of: try liveCommit(repo, booted.checksum))
        let targetBase = baseChecksum(of: try liveCommit(repo, target))
        if !reset && !live.allowReplacement && targetBase != bootedBase {
            throw EngineError(
                .refused,
                "the pending deployment changes the base (\(bootedBase.prefix(12)) → \(targetBase.prefix(12))); reboot into it, or apply it live with --allow-replacement"
            )
        }
        let targetPackages = try packages(ofCommit: target, repo: repo)
        let changed = step.upgraded + step.downgraded
        if !reset && !live.allowReplacement {
            if !step.removed.isEmpty {
                throw EngineError(
                    .refused,
                    "apply-live would remove \(step.removed.count) package(s) (\(step.removed.map(\.name).joined(separator: ", "))); use --allow-replacement"
                )
            }
            if !changed.isEmpty {
                let list = changed.map { "\($0.name) \($0.from) → \($0.to)" }.joined(separator: ", ")
                throw EngineError(.refused, "apply-live would change \(changed.count) package(s) (\(list)); use --allow-replacement")
            }
        }
        if (step.added.map(\.name) + step.removed.map(\.name) + changed.map(\.name)).contains("apt-layer") {
            throw EngineError(.refused, "apply-live cannot replace apt-layer itself; reboot into the pending deployment")
        }
        var changes = try liveDiff(repo, from: source, to: target)
        if let inProgress = state?.inProgress, inProgress != target, inProgress != source {
            changes += try liveDiff(repo, from: inProgress, to: target)
        }
        if let kernel = changes.first(where: { Self.isBootPath($0.path) }) {
            let owner = Self.owner(
                of: kernel.path, among: step.added.map(\.name) + changed.map(\.name) + step.removed.map(\.name), repo, [target, source])
            throw EngineError(
                .refused,
                "apply-live cannot change the kernel or its modules (\(kernel.path)\(owner.map { ", package \($0)" } ?? "")); reboot into the pending deployment"
            )
        }
        try checkLiveSpace(changes)
        let (usr, database) = Self.liveSteps(changes)
        let (etc, kept) = reset ? Self.etcResetSteps(state) : try Self.etcSteps(changes)
        let accounts = reset ? [:] : try liveAccounts(repo, target: target)
        let vsBooted = PackageDiff(from: try packages(ofCommit: booted.checksum, repo: repo), to: targetPackages)
        let paths = changes.map(\.path)
        return LivePlan(
            booted: bootedID, bootedCommit: booted.checksum, source: source, target: target, usr: usr, packageDatabase: database, etc: etc,
            keptEtc: kept, accounts: accounts,
            tmpfiles: changes.filter { $0.kind != .removed && $0.path.hasPrefix("/usr/lib/tmpfiles.d/") && $0.path.hasSuffix(".conf") }.map(\.path)
                .sorted(),
            unitsChanged: paths.contains { $0.hasPrefix("/usr/lib/systemd/system/") || $0.hasPrefix("/usr/etc/systemd/system/") },
            enabledUnits: reset ? [] : Self.enabledUnits(changes, etc: etc), startServices: live.startServices,
            addedPackages: vsBooted.added.map { "\($0.name) \($0.version)" },
            changedPackages: (vsBooted.upgraded + vsBooted.downgraded).map { "\($0.name) \($0.from) → \($0.to)" },
            removedPackages: vsBooted.removed.map(\.name), externalOverlay: booted.unlockState == .transient && state == nil)
    }

    /// After a reboot: the ref that kept the last boot's live commit, and overlay directories no
    /// boot uses any more (libostree's tmpfiles.d removes them at boot on a host that ships it).
    func sweepLiveLeftovers(_ sysroot: Sysroot) {
        guard options.sysroot == "/", let booted = sysroot.booted, LiveFiles.state(booted: "\(booted.checksum).\(booted.serial)") == nil else {
            return
        }
        if let repo = try? sysroot.repo(), (try? repo.resolve(LiveFiles.ref, allowMissing: true)) != nil {
            try? repo.setRef(LiveFiles.ref, to: nil)
        }
        if booted.unlockState == .none { LiveOverlay.sweepStale() }
    }

    func liveCommit(_ repo: Repo, _ checksum: String) throws -> Commit {
        do { return try repo.commit(checksum) } catch { throw EngineError(.notFound, "no commit \(checksum.prefix(12)) in the repository") }
    }

    func liveDiff(_ repo: Repo, from: String, to: String) throws -> [TreeChange] {
        do { return try repo.diff(from: from, to: to, subpath: "/usr") } catch { throw EngineError.wrap(error, "compare /usr of the two commits") }
    }

    /// Runs the helper: in this process's mount namespace when it is the host's (pid 1's), else as a
    /// transient systemd unit, so the overlay is mounted where everyone sees it and no sandbox of
    /// ours (the agent's private `/var/tmp`) holds it.
    ///
    /// The unit is a oneshot that `systemd-run` starts and waits for over systemd's private socket
    /// (`--wait` and `--pipe` would need the D-Bus system bus, which a minimal host does not run);
    /// its output goes to `/run/apt-layer/live-helper.log`, read back when it ends.
    func runLiveHelper(token: CancellationToken) throws {
        let helper = [LiveHelper.executable, LiveHelper.applyArgument, LiveFiles.plan]
        let result: Subprocess.Result
        var lines: [String]
        if Self.inHostMountNamespace {
            result = try Subprocess.run(helper, environment: LiveHelper.environment, token: token) { line in
                if !line.hasPrefix("error: ") { progress.message(line) }
            }
            lines = result.output.split(separator: "\n").map(String.init)
        } else {
            guard FileTree.exists("/run/systemd/system") else {
                throw EngineError(.system, "apply-live: this process has a private mount namespace and systemd is not running to start the helper")
            }
            let unit = "apt-layer-live-\(UUID().uuidString.prefix(8).lowercased())"
            let environment = LiveHelper.environment.sorted { $0.key < $1.key }.map { "--setenv=\($0.key)=\($0.value)" }
            result = try Subprocess.run(
                [
                    "systemd-run", "--quiet", "--collect", "--service-type=oneshot", "--unit=\(unit)", "--description=apt-layer apply-live",
                    "--property=StandardOutput=truncate:\(LiveFiles.helperLog)", "--property=StandardError=inherit",
                ] + environment + ["--"] + helper,
                token: token)
            lines = (FileTree.read(LiveFiles.helperLog) ?? "").split(separator: "\n").map(String.init)
            for line in lines where !line.hasPrefix("error: ") { progress.message(line) }
            lines += result.output.split(separator: "\n").map(String.init)
        }
        guard result.succeeded else {
            let reason = lines.last { $0.hasPrefix("error: ") }.map { String($0.dropFirst(7)) } ?? lines.last ?? "exit status \(result.status)"
            throw EngineError(.system, "apply-live failed (run apply-live again to finish, or apply-live --reset): \(reason)")
        }
    }

    static var inHostMountNamespace: Bool {
        guard let mine = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt"),
            let host = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/1/ns/mnt")
        else { return false }
        return mine == host
    }

    static func liveSummary(_ plan: LivePlan, _ state: LiveState, reset: Bool) -> String {
        var parts: [String]
        if reset {
            parts = ["Reset the live /usr to the booted deployment \(plan.bootedCommit.prefix(12))."]
        } else {
            let packages = state.addedPackages.count + state.changedPackages.count + state.removedPackages.count
            parts = ["Applied \(plan.target.prefix(12)) live (\(packages) package change(s) from the booted deployment); it is also the next boot."]
        }
        if !plan.keptEtc.isEmpty { parts.append("Kept local /etc: \(plan.keptEtc.joined(separator: ", ")).") }
        let started = state.started.filter(plan.enabledUnits.contains)
        if !started.isEmpty { parts.append("Started: \(started.joined(separator: ", ")).") }
        let notStarted = state.notStarted.filter(plan.enabledUnits.contains)
        if !notStarted.isEmpty { parts.append("Enabled, not started: \(notStarted.joined(separator: ", ")).") }
        return parts.joined(separator: " ")
    }
}
