import APTLayerModel
import Foundation
import Glibc
import OSTree

/// The process that changes the running system for a live apply, carrying out a ``LivePlan``.
///
/// It runs in the host's mount namespace: as a transient systemd unit when the caller (the agent,
/// with its own read-only `/usr` and `/etc` and a private `/var/tmp`) lives in another one, else as
/// a plain child. Two hidden entry points of the `apt-layer` program:
/// - `apt-layer __live-apply PLAN` mounts the transient overlay on `/usr` (read-only for
///   everyone), runs the writer, then tmpfiles and systemd;
/// - `apt-layer __live-write PLAN`, started by the first through `unshare --mount --propagation slave`,
///   makes `/usr` writable in its own namespace only and writes `/usr`, `/etc`, the accounts and
///   the dpkg database.
/// Every step is idempotent; the phase reached is kept in `/run/apt-layer/live.json`.
public enum LiveHelper {
    /// The first argument of the outer helper.
    public static let applyArgument = "__live-apply"
    /// The first argument of the writer.
    public static let writeArgument = "__live-write"

    /// Runs the helper when `arguments` (the program's, without argv[0]) ask for it; returns its exit
    /// status, or nil when they are ordinary arguments.
    public static func runIfRequested(_ arguments: [String]) -> Int32? {
        guard arguments.count == 2, [applyArgument, writeArgument].contains(arguments[0]) else { return nil }
        do {
            guard let plan = LiveFiles.read(LivePlan.self, arguments[1]) else {
                throw EngineError(.system, "apply-live: unreadable plan \(arguments[1])")
            }
            if arguments[0] == applyArgument { try apply(plan) } else { try write(plan) }
            return 0
        } catch {
            let message = (error as? EngineError)?.message ?? "\(error)"
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            return 1
        }
    }

    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data("\(line)\n".utf8))
    }

    static func update(_ plan: LivePlan, _ change: (inout LiveState) -> Void) throws {
        var state = LiveFiles.state(booted: plan.booted) ?? LiveState(booted: plan.booted)
        change(&state)
        try LiveFiles.write(state, LiveFiles.state)
    }

    // MARK: - The outer helper

    static func apply(_ plan: LivePlan) throws {
        guard let state = LiveFiles.state(booted: plan.booted), state.inProgress == plan.target else {
            throw EngineError(.system, "apply-live: the live state does not name \(plan.target.prefix(12)) as in progress")
        }
        let overlay = try LiveOverlay.ensure(plan: plan, recorded: state.overlay)
        try update(plan) {
            $0.overlay = overlay
            $0.phase = .overlay
        }
        let me = LiveHelper.executable
        let writer = try Subprocess.run(
            ["unshare", "--mount", "--propagation", "slave", "--", me, writeArgument, LiveFiles.plan], environment: environment, onLine: { say($0) })
        guard writer.succeeded else {
            let last = writer.output.split(separator: "\n").last.map(String.init) ?? "exit status \(writer.status)"
            throw EngineError(.system, writer.signalDeath("apply-live writer") ?? last.replacingOccurrences(of: "error: ", with: ""))
        }
        try update(plan) { $0.phase = .tmpfiles }
        if !plan.tmpfiles.isEmpty {
            let result = try Subprocess.run(["systemd-tmpfiles", "--create"] + plan.tmpfiles)
            if !result.succeeded { say("warning: systemd-tmpfiles exited with \(result.status): \(result.output.split(separator: "\n").last ?? "")") }
        }
        var started: [String] = []
        var notStarted: [String] = []
        if FileTree.exists("/run/systemd/system") {
            if plan.unitsChanged { _ = try? Subprocess.run(["systemctl", "daemon-reload"]) }
            for unit in plan.enabledUnits {
                if plan.startServices, (try? Subprocess.run(["systemctl", "start", unit]))?.succeeded == true {
                    started.append(unit)
                } else {
                    notStarted.append(unit)
                }
            }
        } else {
            notStarted = plan.enabledUnits
        }
        try update(plan) {
            $0.commit = plan.target
            $0.inProgress = nil
            $0.phase = .done
            $0.addedPackages = plan.addedPackages
            $0.changedPackages = plan.changedPackages
            $0.removedPackages = plan.removedPackages
            $0.keptEtc = Array(Set($0.keptEtc + plan.keptEtc)).sorted()
            $0.started = Array(Set($0.started + started)).sorted()
            $0.notStarted = Array(Set($0.notStarted + notStarted).subtracting($0.started)).sorted()
            if plan.target == plan.bootedCommit {
                $0.started = []
                $0.notStarted = []
                $0.keptEtc = []
            }
        }
    }

    /// What the helper passes on from its own environment: libostree's debug flags and the test
    /// crash points (``FaultPoint``).
    static var environment: [String: String] {
        ProcessInfo.processInfo.environment.filter { ["OSTREE_SYSROOT_DEBUG", "APT_LAYER_TEST_FAULT", "APT_LAYER_TEST_FAULT_ONCE"].contains($0.key) }
    }

    /// The `apt-layer` program beside the running one (the agent's helper is the CLI's program).
    static var executable: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let directory = (me as NSString).deletingLastPathComponent
        return "\(directory)/apt-layer"
    }

    // MARK: - The writer

    static func write(_ plan: LivePlan) throws {
        try LiveOverlay.makeWritableHere()
        let repo: Repo
        do {
            let sysroot = Sysroot(path: "/")
            try sysroot.load()
            repo = try sysroot.repo()
        } catch {
            throw EngineError.wrap(error, "open the repository")
        }
        try update(plan) { $0.phase = .usr }
        say("Writing \(plan.usr.count) change(s) to /usr")
        try run(plan.usr, repo: repo, target: plan.target)
        FaultPoint.hit("live-usr-written")
        try update(plan) { $0.phase = .etc }
        for step in plan.etc {
            let path = "/etc/\(step.path)"
            switch step.action {
            case .remove:
                FileTree.remove(path)
            case .write:
                if step.directory {
                    if !FileTree.isDirectory(path) { try copyDirectoryNode(from: "/usr/etc/\(step.path)", to: path) }
                } else {
                    try checkout(repo, plan.target, "/usr/etc/\(step.path)", parentOf: path)
                    let write = LiveEtcWrite(path: step.path, sha256: Self.digest(path), replaced: step.existed)
                    // Recorded at once, so a --reset after a kill here still knows the file.
                    try update(plan) { state in state.etcWrites = state.etcWrites.filter { $0.path != write.path } + [write] }
                }
            }
        }
        try update(plan) { state in
            let removed = Set(plan.etc.filter { $0.action == .remove }.map(\.path))
            state.etcWrites = state.etcWrites.filter { !removed.contains($0.path) }
            state.phase = .accounts
        }
        for (file, lines) in plan.accounts.sorted(by: { $0.key < $1.key }) where SystemUsers.files.contains(file) {
            let path = "/etc/\(file)"
            try FileTree.replaceContents(path, SystemUsers.appending(lines, to: FileTree.read(path) ?? ""))
        }
        try update(plan) { $0.phase = .packageDatabase }
        FaultPoint.hit("live-before-database")
        try run(plan.packageDatabase, repo: repo, target: plan.target)
    }

    static func run(_ steps: [LivePlan.Step], repo: Repo, target: String) throws {
        for step in steps {
            switch step.action {
            case .remove:
                FileTree.remove(step.path)
            case .replace:
                FileTree.remove(step.path)
                try place(step, repo: repo, target: target)
            case .copy:
                try place(step, repo: repo, target: target)
            }
        }
    }

    static func place(_ step: LivePlan.Step, repo: Repo, target: String) throws {
        if step.directory {
            do { try repo.checkoutCopy(target, subpath: step.path, to: step.path) } catch { throw EngineError.wrap(error, "write \(step.path)") }
        } else {
            try checkout(repo, target, step.path, parentOf: step.path)
        }
    }

    /// libostree checks a file subpath out *into* the destination directory, under its own name.
    static func checkout(_ repo: Repo, _ target: String, _ subpath: String, parentOf path: String) throws {
        do { try repo.checkoutCopy(target, subpath: subpath, to: (path as NSString).deletingLastPathComponent) } catch {
            throw EngineError.wrap(error, "write \(path)")
        }
    }

    static func copyDirectoryNode(from source: String, to path: String) throws {
        guard let info = FileTree.lstatInfo(source) else { return try FileTree.makeDirectory(path) }
        guard mkdir(path, info.st_mode & 0o7777) == 0 || errno == EEXIST else { throw FileTree.posixError("create \(path)") }
        chown(path, info.st_uid, info.st_gid)
        chmod(path, info.st_mode & 0o7777)
    }

    /// sha256 of a file's bytes, or of a symlink's target.
    static func digest(_ path: String) -> String {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) { return SHA256.hex(target) }
        return (try? SHA256.hex(fileAt: path)) ?? ""
    }
}
