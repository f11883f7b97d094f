import APTLayerModel
import Foundation
import Glibc
import OSTree

extension Engine {
    /// The shared path of every layering verb: compute the next origin and base, build (or reuse the
    /// base when nothing is layered), deploy, carry new accounts, and keep bases alive with refs.
    /// `kind` and `detail` (a target, a refspec, `--check`) name the change in the lock holder's
    /// note and in the result's summary.
    func relayer(
        _ kind: HostOperation.Kind,
        detail: String? = nil,
        flags: LayeringFlags,
        token: CancellationToken,
        allowEmpty: Bool = false,
        transform: (Origin) throws -> Origin,
        base: ((Sysroot, Origin) throws -> String)? = nil,
        adjust: ((Origin, String) -> Origin)? = nil
    ) throws -> ChangeResult {
        let operation = [kind.words, detail].compactMap { $0 }.joined(separator: " ")
        return try locked(operation) { sysroot in
            let osname = try osname(sysroot)
            let repo = try sysroot.repo()
            // rpm-ostree's merge semantics: a change builds on the pending deployment (the default,
            // staged or not: what `status` shows next), so changes before a reboot accumulate;
            // /etc merges from libostree's merge deployment (the booted one on a host booted into
            // this stateroot), also the only valid merge deployment for staging (a staged one is
            // replaced at finalization, issue 19).
            let pending = deployments(sysroot, osname).first
            let merge = sysroot.mergeDeployment(osname: osname)
            let currentOrigin: Origin
            var currentCommit: Commit?
            if let pending {
                guard let keyFile = pending.origin, let origin = Origin(keyFile: keyFile) else {
                    throw EngineError(.invalidArgument, "deployment \(pending.checksum.prefix(12)) has no origin; rebase it onto a ref first")
                }
                currentOrigin = origin
                currentCommit = try repo.commit(pending.checksum)
            } else {
                guard allowEmpty else {
                    throw EngineError(.invalidArgument, "stateroot \(osname) has no deployment yet; run apt-layer rebase REF first")
                }
                currentOrigin = Origin(baseRefspec: "")
            }
            var origin = try transform(currentOrigin)
            let baseChecksum: String
            if let base {
                baseChecksum = try base(sysroot, origin)
            } else if let currentCommit {
                baseChecksum = self.baseChecksum(of: currentCommit)
            } else {
                throw EngineError(.invalidArgument, "no base to build on")
            }
            if let adjust { origin = adjust(origin, baseChecksum) }
            try token.check()
            // A build carries the base's kernel and initramfs (a layered kernel needs
            // --allow-kernel): a full /boot is refused before the build, not after it.
            // writeDeployment checks the built commit, and counts the /etc copy, once more; with
            // nothing to build it comes next, so there is no check here.
            if !flags.dryRun && !origin.requested.isEmpty { try checkSpace(sysroot, checksum: baseChecksum, merge: nil) }

            // Diffs are against the deployment this change replaces, as rpm-ostree prints them.
            let before = try currentCommit.map { try packages(ofCommit: $0.checksum, repo: repo) } ?? []
            let target: String
            let diff: PackageDiff
            var accounts: [String: [String]] = [:]
            var notes: [String] = []
            if origin.requested.isEmpty {
                if currentCommit?.checksum == baseChecksum && origin == currentOrigin {
                    return ChangeResult(changed: false, summary: "No change.")
                }
                diff = PackageDiff(from: before, to: try packages(ofCommit: baseChecksum, repo: repo))
                if flags.dryRun {
                    return ChangeResult(
                        changed: true, summary: "Would deploy base \(baseChecksum.prefix(12)) with nothing layered: \(Self.describe(diff)).",
                        diff: diff)
                }
                target = baseChecksum
            } else {
                let builder = LayerBuilder(repo: repo, stateDirectory: stateDirectory, token: token, progress: progress)
                let sameOrigin = origin == currentOrigin
                let request = LayerBuilder.Request(
                    baseChecksum: baseChecksum, requested: origin.requested,
                    mergeEtc: merge.map { "\(sysroot.directory(of: $0))/etc" }, allowKernel: flags.allowKernel,
                    currentInputsSHA256: sameOrigin ? currentCommit?.string(Layout.Key.inputsSHA256) : nil,
                    dryRun: flags.dryRun, refreshMetadata: flags.refresh,
                    secureBoot: SecureBootModules.isEnforced(efivars: options.efivars),
                    refuseObsoleteReplacements: kind == .overrideReplace && !flags.idempotent)
                switch try builder.build(request) {
                case .unchanged:
                    return ChangeResult(changed: false, summary: "No change.")
                case .planned(let packages):
                    let planned = PackageDiff(from: before, to: packages)
                    return ChangeResult(changed: true, summary: "Would change \(Self.describe(planned)).", diff: planned)
                case .built(let build):
                    target = build.checksum
                    diff = PackageDiff(from: before, to: build.packages)
                    accounts = build.newAccounts
                    // Replacements the new base carries already are dropped from the origin too.
                    origin.requested = build.requested
                    notes = build.notes
                    for note in notes { progress.message(note) }
                }
            }
            try token.check()
            do { try progress.willDeploy(target) } catch {
                throw EngineError.wrap(error, "record the commit about to be deployed; nothing was changed")
            }
            FaultPoint.hit("before-deploy")
            try writeDeployment(
                sysroot, osname: osname, checksum: target, origin: origin, merge: merge,
                accounts: accounts, kernelArguments: Self.carriedKernelArguments(pending: pending, merge: merge),
                lockFinalization: flags.lockFinalization, token: token)
            FaultPoint.hit("after-deploy")
            return ChangeResult(
                changed: true, summary: (notes + ["Deployed \(target.prefix(12)) (\(operation))."]).joined(separator: " "), diff: diff,
                checksum: target)
        }
    }

    static func describe(_ diff: PackageDiff) -> String {
        var parts: [String] = []
        if !diff.added.isEmpty { parts.append("\(diff.added.count) added") }
        if !diff.removed.isEmpty { parts.append("\(diff.removed.count) removed") }
        if !diff.upgraded.isEmpty { parts.append("\(diff.upgraded.count) upgraded") }
        if !diff.downgraded.isEmpty { parts.append("\(diff.downgraded.count) downgraded") }
        return parts.isEmpty ? "nothing in the package set" : parts.joined(separator: ", ")
    }

    /// The pending deployment's kernel arguments when they must be carried explicitly: libostree
    /// takes a new deployment's from its merge deployment, which is the booted one while a change
    /// (`kargs` included) is pending. nil when the merge deployment is the pending one, or when the
    /// pending one was staged without explicit arguments (finalization would have given it the
    /// merge deployment's: carrying its empty list wrote boot entries without `root=`).
    static func carriedKernelArguments(pending: Deployment?, merge: Deployment?) -> [String]? {
        guard let pending, let merge, !pending.isSame(as: merge), let explicit = pending.explicitKernelArguments else { return nil }
        return KernelArguments(explicit).arguments
    }

    /// The kernel arguments `deployment` boots with: its own, or for one staged without explicit
    /// arguments its merge deployment's (what finalization will write).
    static func effectiveKernelArguments(_ deployment: Deployment, merge: Deployment?) -> String {
        deployment.explicitKernelArguments ?? merge?.kernelArguments ?? ""
    }

    /// Deploys `checksum` as the new default (staged on a booted host), appends script-created
    /// accounts to its /etc, and refreshes the base refs.
    func writeDeployment(
        _ sysroot: Sysroot, osname: String, checksum: String, origin: Origin, merge: Deployment?,
        accounts: [String: [String]], kernelArguments: [String]? = nil, lockFinalization: Bool = false, token: CancellationToken
    ) throws {
        try checkSpace(sysroot, checksum: checksum, merge: merge)
        // Unknown (nil) when the refs cannot be read: reclaim then prunes.
        let referencedBefore = try? referencedCommits(sysroot)
        // Protect the new base before anything can prune it.
        try refreshBaseRefs(sysroot, extra: [checksum])
        FaultPoint.hit("after-base-refs")
        progress.phase("Deploying \(checksum.prefix(12))")
        let stage = sysroot.isBooted
        if stage && lockFinalization {
            try FileTree.makeDirectory("/run/ostree")
            try FileTree.write("/run/ostree/staged-deployment-locked", "")
        }
        do {
            let new = try sysroot.deploy(
                osname: osname, revision: checksum, origin: origin.keyFile, merge: merge,
                kernelArguments: kernelArguments, stage: stage, cancellable: token.cancellable)
            if stage {
                try rememberStagedAccounts(accounts, checksum: new.checksum)
                armBootCounter(for: Self.counterName(new))
            } else {
                let etc = "\(sysroot.directory(of: new))/etc"
                for (name, lines) in accounts where !lines.isEmpty {
                    let path = "\(etc)/\(name)"
                    try FileTree.replaceContents(path, SystemUsers.appending(lines, to: FileTree.read(path) ?? ""))
                }
                try sysroot.writeNewDefault(osname: osname, new: new, merge: merge)
                FaultPoint.hit("after-new-default")
                try sysroot.load()
                try retainDefaultRollbackAndPinned(sysroot, osname: osname)
            }
            try sysroot.load()
        } catch {
            throw EngineError.wrap(error, "deploy")
        }
        try refreshBaseRefs(sysroot, extra: [])
        do { try reclaim(sysroot, referencedBefore: referencedBefore) } catch { progress.message("warning: cleanup failed: \(error)") }
        pruneLocalPackages(sysroot)
        collectImages(sysroot)
    }

    /// Commits something still points at: every deployment's and every ref's (local, remote and
    /// mirrored refs, as libostree's prune counts them).
    func referencedCommits(_ sysroot: Sysroot) throws -> Set<String> {
        var commits = Set(sysroot.deployments.map(\.checksum))
        let repo = try sysroot.repo()
        for ref in try repo.refs() {
            if let commit = try repo.resolve(ref, allowMissing: true) { commits.insert(commit) }
        }
        return commits
    }

    /// Deletes undeployed deployment directories, then what this change left unreferenced. A
    /// commit that lost its last reference (a dropped deployment, a base whose ref went) but has the
    /// same tree as a commit still referenced (a package toggled back on, the same request built
    /// again) leaves only its commit object behind: that object is deleted directly, under the
    /// repository's exclusive lock with the refs read again under it. Anything else, and any doubt
    /// (refs that cannot be read, a commit that cannot be loaded), takes libostree's prune, which
    /// walks every ref's whole tree (the cost that grows with the base). Stray objects of an
    /// interrupted build wait for the next prune or `apt-layer cleanup`.
    func reclaim(_ sysroot: Sysroot, referencedBefore: Set<String>?) throws {
        try sysroot.prepareCleanup()
        let repo = try sysroot.repo()
        let freed: Bool = {
            guard let referencedBefore else { return false }
            return
                (try? repo.withExclusiveLock { () throws -> Bool in
                    let referenced = try referencedCommits(sysroot)
                    let lost = referencedBefore.subtracting(referenced)
                    guard !lost.isEmpty else { return true }
                    var trees: Set<String> = []
                    for commit in referenced {
                        guard let tree = try repo.commit(commit).contentChecksum else { return false }
                        trees.insert(tree)
                    }
                    for commit in lost {
                        guard let tree = try repo.commit(commit).contentChecksum, trees.contains(tree) else { return false }
                    }
                    for commit in lost { try repo.deleteCommitObject(commit) }
                    return true
                }) ?? false
        }()
        if !freed { try sysroot.cleanup() }
    }

    /// On a sysroot that is not booted (an image being built, a test), libostree's rollback
    /// retention keeps every earlier deployment; keep what a booted host keeps instead: the new
    /// default, the one before it (the rollback) and pinned ones. Other stateroots are untouched.
    func retainDefaultRollbackAndPinned(_ sysroot: Sysroot, osname: String) throws {
        let all = sysroot.deployments
        var seen = 0
        let kept = all.filter { d in
            guard d.osname == osname else { return true }
            seen += 1
            return seen <= 2 || d.isPinned
        }
        // writeDeployment cleans up (and prunes) once, after the base refs are refreshed.
        if kept.count < all.count { try sysroot.writeDeployments(kept, cleanUp: false) }
    }

    /// Keeps `apt-layer/base/CHECKSUM` for the base of every deployment (plus `extra` commits'
    /// bases) and deletes the rest, and the kept base checkouts of bases no longer used. Refs are named by the commit they hold, so writing the new set
    /// never moves or drops a ref a live deployment needs, whatever the order or a kill between two
    /// writes (refs of the older `apt-layer/base/N` form are replaced the same way).
    func refreshBaseRefs(_ sysroot: Sysroot, extra: [String]) throws {
        do {
            let repo = try sysroot.repo()
            var bases: [String] = []
            for checksum in sysroot.deployments.map(\.checksum) + extra {
                guard let commit = try? repo.commit(checksum) else { continue }
                let base = baseChecksum(of: commit)
                if !bases.contains(base) { bases.append(base) }
            }
            let existing = try repo.refs(prefix: Layout.baseRefPrefix).map {
                $0.hasPrefix(Layout.baseRefPrefix) ? $0 : "\(Layout.baseRefPrefix)/\($0)"
            }
            for base in bases where !existing.contains("\(Layout.baseRefPrefix)/\(base)") {
                try repo.setRef("\(Layout.baseRefPrefix)/\(base)", to: base)
            }
            for ref in existing where !bases.contains(String(ref.split(separator: "/").last ?? "")) {
                try repo.setRef(ref, to: nil)
            }
            BaseCheckouts(repo: repo, stateDirectory: stateDirectory).prune(keeping: Set(bases))
        } catch {
            throw EngineError.wrap(error, "update base refs")
        }
    }

    /// Removes stored local .debs that no deployment requests.
    func pruneLocalPackages(_ sysroot: Sysroot) {
        var keep: Set<String> = []
        for d in sysroot.deployments {
            if let keyFile = d.origin, let origin = Origin(keyFile: keyFile) {
                keep.formUnion((origin.requested.localPackages + origin.requested.localReplacements).map(\.sha256))
            }
        }
        LocalPackages(stateDirectory: stateDirectory).prune(keeping: keep)
    }
}
