import APTLayerModel
import Foundation
import Glibc
import OSTree

extension Engine {
    /// Makes the previous deployment the default (run again to undo). Reorders deployments only.
    public func rollback() throws -> ChangeResult {
        try locked("rollback") { sysroot in
            let osname = try osname(sysroot)
            let all = sysroot.deployments
            let mine = all.filter { $0.osname == osname && !$0.isStaged }
            guard let current = mine.first else { throw EngineError(.invalidArgument, "no deployment to roll back from") }
            let target: Deployment
            if let booted = sysroot.booted, !current.isSame(as: booted) {
                target = booted
            } else if mine.count > 1 {
                target = mine[1]
            } else {
                throw EngineError(.invalidArgument, "no rollback deployment")
            }
            let order = [target] + all.filter { !$0.isSame(as: target) }
            do {
                // A reorder frees nothing: no cleanup, whose repository prune walks every tree.
                try sysroot.writeDeployments(order, cleanUp: false)
            } catch {
                throw EngineError.wrap(error, "roll back")
            }
            // The previous boot/loader.N: a reorder leaves no deployment behind, so this only
            // deletes that old boot version (no repository walk).
            try? sysroot.prepareCleanup()
            try? sysroot.load()
            disarmStaleBootCounter(sysroot)
            let repo = try? sysroot.repo()
            let diff = repo.flatMap { repo in
                try? PackageDiff(from: packages(ofCommit: current.checksum, repo: repo), to: packages(ofCommit: target.checksum, repo: repo))
            }
            return ChangeResult(
                changed: true, summary: "Moving \(target.checksum.prefix(12)).\(target.serial) to be the default.", diff: diff,
                checksum: target.checksum)
        }
    }

    /// Removes pending and/or rollback deployments (never pinned or booted ones), then prunes the repo.
    public func cleanup(pending: Bool, rollback: Bool) throws -> ChangeResult {
        try locked("cleanup") { sysroot in
            let osname = try osname(sysroot)
            let all = sysroot.deployments
            let booted = sysroot.booted
            let bootedIndex = booted.flatMap { b in all.firstIndex { $0.isSame(as: b) } }
            let defaultIndex = all.firstIndex { $0.osname == osname }
            var removed = 0
            let kept = all.enumerated().filter { index, d in
                guard d.osname == osname, !d.isPinned, !(booted.map(d.isSame) ?? false) else { return true }
                let isPending = bootedIndex.map { index < $0 } ?? false
                let anchor = bootedIndex ?? defaultIndex ?? 0
                let isRollback = index > anchor
                if (pending && isPending) || (rollback && isRollback) {
                    removed += 1
                    return false
                }
                return true
            }.map(\.element)
            do {
                if removed > 0 { try sysroot.writeDeployments(kept, cleanUp: false) }
                try sysroot.load()
                disarmStaleBootCounter(sysroot)
                try refreshBaseRefs(sysroot, extra: [])
                try sysroot.cleanup()
            } catch {
                throw EngineError.wrap(error, "clean up")
            }
            pruneLocalPackages(sysroot)
            collectImages(sysroot)
            return ChangeResult(
                changed: removed > 0, summary: removed > 0 ? "Removed \(removed) deployment(s)." : "No deployment removed; repository pruned.")
        }
    }

    /// Pins or unpins the deployment at `index` (as `status` numbers them).
    public func setPinned(index: Int, _ pinned: Bool) throws -> ChangeResult {
        try locked(pinned ? "pin" : "unpin") { sysroot in
            let all = sysroot.deployments
            guard all.indices.contains(index) else {
                throw EngineError(.notFound, "no deployment at index \(index) (there are \(all.count))")
            }
            if all[index].isPinned == pinned {
                return ChangeResult(changed: false, summary: "Deployment \(index) is already \(pinned ? "pinned" : "unpinned").")
            }
            do { try sysroot.setPinned(all[index], pinned) } catch { throw EngineError.wrap(error, "pin") }
            return ChangeResult(changed: true, summary: "Deployment \(index) is now \(pinned ? "pinned" : "unpinned").")
        }
    }

    /// Edits the kernel arguments of the default deployment into a new deployment.
    public func kernelArguments(_ edits: KernelArguments.Edits, token: CancellationToken = .init()) throws -> ChangeResult {
        try locked("kargs") { sysroot in
            let osname = try osname(sysroot)
            guard let current = deployments(sysroot, osname).first else { throw EngineError(.invalidArgument, "no deployment") }
            let merge = sysroot.mergeDeployment(osname: osname)
            var kargs = KernelArguments(Self.effectiveKernelArguments(current, merge: merge))
            let before = kargs
            try kargs.apply(edits)
            if kargs == before {
                return ChangeResult(changed: false, summary: "Kernel arguments unchanged: \(KernelArguments.userVisible(kargs.description))")
            }
            guard let keyFile = current.origin, let origin = Origin(keyFile: keyFile) else {
                throw EngineError(.invalidArgument, "deployment has no origin")
            }
            // libostree's merge deployment (the booted one) merges /etc: a staged one cannot be a
            // staged deployment's merge deployment, finalization would not find it (issue 19); the
            // pending one gives the commit, origin and arguments.
            try writeDeployment(
                sysroot, osname: osname, checksum: current.checksum, origin: origin, merge: merge,
                accounts: [:], kernelArguments: kargs.arguments, token: token)
            return ChangeResult(
                changed: true, summary: "Kernel arguments: \(KernelArguments.userVisible(kargs.description))", checksum: current.checksum)
        }
    }

    /// The kernel arguments of the default deployment.
    public func currentKernelArguments() throws -> String {
        let sysroot = try openSysroot()
        let osname = try osname(sysroot)
        guard let current = deployments(sysroot, osname).first else { return "" }
        return KernelArguments.userVisible(Self.effectiveKernelArguments(current, merge: sysroot.mergeDeployment(osname: osname)))
    }

    /// Unlocks a staged deployment's finalization so it is applied at the next shutdown.
    public func finalize() throws -> ChangeResult {
        try locked("finalize") { sysroot in
            guard sysroot.isBooted, sysroot.deployments.contains(where: \.isStaged) else {
                throw EngineError(.invalidArgument, "no staged deployment to finalize")
            }
            unlink("/run/ostree/staged-deployment-locked")
            return ChangeResult(changed: true, summary: "Finalization unlocked; the staged deployment applies at the next reboot.")
        }
    }
}
