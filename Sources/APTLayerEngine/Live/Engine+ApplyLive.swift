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
        let plan: LivePlan
        if state?.inProgress == target, var stored = LiveFiles.read(LivePlan.self, LiveFiles.plan), stored.target == target, stored.booted == bootedID
        {
            // Resuming: the same plan, whose /etc decisions were made before anything changed.
            stored.startServices = stored.startServices || live.startServices
            plan = stored
        } else {
            plan = try livePlan(repo, booted: booted, bootedID: bootedID, state: state, source: source, target: target, reset: reset, live: live)
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
        let diff = (try? PackageDiff(from: packages(ofCommit: source, repo: repo), to: packages(ofCommit: target, repo: repo)))
        return ChangeResult(changed: true, summary: Self.liveSummary(plan, done, reset: reset), diff: diff)
    }

    /// Decides what a live apply from `source` to `target` does, refusing what it must not do.
    func livePlan(
        _ repo: Repo, booted: Deployment, bootedID: String, state: LiveState?, source: String, target: String, reset: Bool, live: LiveOptions
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
        let step = PackageDiff(from: try packages(ofCommit: source, repo: repo), to: targetPackages)
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

    /// Kernel, modules and boot files: never changed under a running kernel.
    static func isBootPath(_ path: String) -> Bool {
        ["/usr/lib/modules", "/usr/lib/ostree-boot", "/usr/lib/linux"].contains { path == $0 || path.hasPrefix("\($0)/") }
    }

    /// The package whose file list (in `commits`, first found) has `path`.
    static func owner(of path: String, among names: [String], _ repo: Repo, _ commits: [String]) -> String? {
        let shipped = path.hasPrefix("/usr/") ? [path, String(path.dropFirst(4))] : [path]
        for name in names {
            for commit in commits {
                guard let bytes = try? repo.readFile("/\(Layout.dpkgDatabase)/info/\(name).list", in: commit), !bytes.isEmpty else { continue }
                let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
                if lines.contains(where: { line in shipped.contains { $0 == line || $0.hasPrefix("\(line)/") || line.hasPrefix("\($0)/") } }) {
                    return name
                }
            }
        }
        return names.first { $0.hasPrefix("linux-image") || $0.hasPrefix("linux-modules") }
    }

    /// Free space where the overlay's upper layer lives (/var/tmp), with a 5 % margin.
    func checkLiveSpace(_ changes: [TreeChange]) throws {
        let need = changes.filter { $0.kind != .removed }.reduce(UInt64(0)) { $0 + $1.size }
        var info = statvfs()
        guard need > 0, statvfs("/var", &info) == 0 else { return }
        let free = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        if Double(need) > Double(free) * 0.95 {
            throw EngineError(
                .refused, "not enough space on /var for the live overlay: need \(need / 1_048_576 + 1) MiB, have \(free / 1_048_576) MiB",
                underlying: POSIXError(.ENOSPC))
        }
    }

    /// `/usr` steps and dpkg database steps: removals deepest first, then copies parents first
    /// (an added directory is copied whole, so what is under it is left out), `status` last.
    static func liveSteps(_ changes: [TreeChange]) -> (usr: [LivePlan.Step], database: [LivePlan.Step]) {
        let copiedDirectories = Set(changes.filter { $0.kind != .removed && $0.type == .directory && $0.kind != .modified }.map(\.path))
        func underCopied(_ path: String) -> Bool {
            var parent = (path as NSString).deletingLastPathComponent
            while parent.count > 1 {
                if copiedDirectories.contains(parent) { return true }
                parent = (parent as NSString).deletingLastPathComponent
            }
            return false
        }
        var removals: [LivePlan.Step] = []
        var copies: [LivePlan.Step] = []
        // One step per path (two diffs to the same target, on a reset of an unfinished apply, may
        // both name it): a type change wins over a copy.
        var byPath: [String: TreeChange] = [:]
        for change in changes where byPath[change.path]?.kind != .typeChanged { byPath[change.path] = change }
        for change in byPath.values where !underCopied(change.path) {
            switch change.kind {
            case .removed: removals.append(.init(action: .remove, path: change.path, directory: false, size: 0))
            case .typeChanged: copies.append(.init(action: .replace, path: change.path, directory: change.type == .directory, size: change.size))
            case .added, .modified: copies.append(.init(action: .copy, path: change.path, directory: change.type == .directory, size: change.size))
            }
        }
        let ordered = removals.sorted { $0.path > $1.path } + copies.sorted { $0.path < $1.path }
        let database = "/\(Layout.dpkgDatabase)/"
        let status = "\(database)status"
        let usr = ordered.filter { !$0.path.hasPrefix(database) }
        let db = ordered.filter { $0.path.hasPrefix(database) && $0.path != status } + ordered.filter { $0.path == status }
        return (usr, db)
    }

    /// `/etc` steps for the target's `usr/etc` changes: a file the admin has not edited (the same
    /// as `/usr/etc`'s now) follows the target; an edited (or deleted) one is kept and reported.
    /// The account databases are left to the accounts step; `ld.so.cache` is generated, never edited.
    static func etcSteps(_ changes: [TreeChange]) throws -> ([LivePlan.EtcStep], [String]) {
        var steps: [LivePlan.EtcStep] = []
        var kept: [String] = []
        let accountFiles = Set(SystemUsers.files.flatMap { [$0, "\($0)-"] })
        for change in changes.sorted(by: { $0.path < $1.path }) where change.path.hasPrefix("/usr/etc/") {
            let rel = String(change.path.dropFirst("/usr/etc/".count))
            if accountFiles.contains(rel) { continue }
            let live = "/etc/\(rel)"
            let exists = FileTree.exists(live)
            let unedited = rel == "ld.so.cache" || sameEntry(live, change.path)
            switch change.kind {
            case .added:
                if change.type == .directory {
                    if !exists { steps.append(.init(action: .write, path: rel, existed: false, directory: true)) }
                } else if exists {
                    kept.append(rel)
                } else {
                    steps.append(.init(action: .write, path: rel, existed: false, directory: false))
                }
            case .modified, .typeChanged:
                if change.type == .directory { continue }
                if exists && unedited {
                    if change.kind == .typeChanged { steps.append(.init(action: .remove, path: rel, existed: true, directory: false)) }
                    steps.append(.init(action: .write, path: rel, existed: true, directory: false))
                } else {
                    kept.append(rel)
                }
            case .removed:
                if exists && !FileTree.isDirectory(live) {
                    if unedited { steps.append(.init(action: .remove, path: rel, existed: true, directory: false)) } else { kept.append(rel) }
                }
            }
        }
        return (steps, kept)
    }

    /// `--reset`: the `/etc` files the live applies wrote, undone where the admin has not touched
    /// them since (a replaced default comes back from the booted `/usr/etc`, a new file goes).
    static func etcResetSteps(_ state: LiveState?) -> ([LivePlan.EtcStep], [String]) {
        var steps: [LivePlan.EtcStep] = []
        var kept: [String] = []
        for write in state?.etcWrites ?? [] {
            guard LiveHelper.digest("/etc/\(write.path)") == write.sha256 else {
                kept.append(write.path)
                continue
            }
            steps.append(.init(action: write.replaced ? .write : .remove, path: write.path, existed: true, directory: false))
        }
        return (steps, kept)
    }

    /// Whether two paths hold the same entry: the same type and mode and bytes, or the same link.
    static func sameEntry(_ a: String, _ b: String) -> Bool {
        guard let sa = FileTree.lstatInfo(a), let sb = FileTree.lstatInfo(b), sa.st_mode == sb.st_mode else { return false }
        switch sa.st_mode & S_IFMT {
        case S_IFLNK:
            return (try? FileManager.default.destinationOfSymbolicLink(atPath: a)) == (try? FileManager.default.destinationOfSymbolicLink(atPath: b))
        case S_IFREG:
            return sa.st_size == sb.st_size && FileManager.default.contentsEqual(atPath: a, andPath: b)
        default:
            return true
        }
    }

    /// Units the target enables that the running system does not have: new `*.wants/` links under
    /// `usr/etc/systemd/system` that the `/etc` step writes.
    static func enabledUnits(_ changes: [TreeChange], etc: [LivePlan.EtcStep]) -> [String] {
        let written = Set(etc.filter { $0.action == .write }.map { "/usr/etc/\($0.path)" })
        return Array(
            Set(
                changes.filter { change in
                    change.kind == .added && change.type == .symlink && written.contains(change.path)
                        && change.path.hasPrefix("/usr/etc/systemd/system/")
                        && (change.path as NSString).deletingLastPathComponent.hasSuffix(".wants")
                }.map { ($0.path as NSString).lastPathComponent })
        ).sorted()
    }

    /// Accounts the target's packages created: lines of its `usr/etc` account files whose names the
    /// live `/usr/etc` lacks, and those remembered for the staged deployment. A name new to `/etc`
    /// whose uid or gid a local account already has is refused before anything changes.
    func liveAccounts(_ repo: Repo, target: String) throws -> [String: [String]] {
        var accounts: [String: [String]] = [:]
        let remembered = FileTree.read("\(stagedAccountsDirectory)/\(target).json").flatMap {
            try? JSONDecoder().decode([String: [String]].self, from: Data($0.utf8))
        }
        for file in SystemUsers.files {
            let after = String(decoding: (try? repo.readFile("/usr/etc/\(file)", in: target)) ?? [], as: UTF8.self)
            var lines = SystemUsers.added(before: FileTree.read("/usr/etc/\(file)") ?? "", after: after)
            lines += (remembered?[file] ?? []).filter { !lines.contains($0) }
            let local = FileTree.read("/etc/\(file)") ?? ""
            let fresh = SystemUsers.added(before: local, after: lines.joined(separator: "\n"))
            if file == "passwd" || file == "group" {
                let ids = Dictionary(
                    local.split(separator: "\n").compactMap { line -> (Substring, Substring)? in
                        let f = line.split(separator: ":", omittingEmptySubsequences: false)
                        return f.count > 2 ? (f[2], f[0]) : nil
                    }, uniquingKeysWith: { a, _ in a })
                for line in fresh {
                    let f = line.split(separator: ":", omittingEmptySubsequences: false)
                    if f.count > 2, let other = ids[f[2]] {
                        throw EngineError(
                            .refused,
                            "apply-live: the new account \(f[0]) (\(file == "passwd" ? "uid" : "gid") \(f[2])) collides with the local \(other) in /etc/\(file); reboot into the pending deployment"
                        )
                    }
                }
            }
            if !fresh.isEmpty { accounts[file] = fresh }
        }
        return accounts
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
