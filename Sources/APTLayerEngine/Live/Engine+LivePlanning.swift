import APTLayerModel
import Foundation
import Glibc
import OSTree

/// How a live apply's plan is made from the two commits' difference: the order of the `/usr`
/// steps, the `/etc` decisions, the accounts, the kernel refusal and the space check
/// (docs/apply-live.md, "What it does").
extension Engine {
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
}
