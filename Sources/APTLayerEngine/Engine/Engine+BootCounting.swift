import APTLayerModel
import Foundation
import Glibc
import OSTree

/// The boot counter's life on a booted host (docs/boot-counting.md): armed when a new deployment
/// is staged, disarmed when the default goes back to a deployment that already booted, checked
/// once per boot (a fall-back makes the booted deployment the default) and cleared when the new
/// deployment is known good.
extension Engine {
    /// What ``checkBoot()`` found and did.
    public enum BootCheck: Sendable, Equatable {
        /// The sysroot has no environment block: nothing is counted.
        case notCounted
        /// Nothing armed.
        case unarmed
        /// Armed for a deployment that has not booted yet (staged, or the default after a change).
        case waiting(deployment: String?, triesLeft: Int)
        /// This boot is the armed deployment's: mark it good once it is (``markBootGood()``).
        case onTrial(deployment: String, triesLeft: Int)
        /// The menu fell back; the booted deployment is the default again and the counter cleared.
        case fellBack(BootFallback)
        /// Armed for a deployment that is neither booted nor pending any more: cleared.
        case clearedStale(deployment: String?)
    }

    var bootCounter: BootCounter { BootCounter(sysroot: options.sysroot) }

    /// Where the fall-back of this boot is recorded: under /run, so that it lasts exactly one boot.
    var bootFallbackRecord: String {
        (options.sysroot == "/" ? "/run/apt-layer" : "\(stateDirectory)/run") + "/boot-fallback.json"
    }

    /// After a new deployment was staged on a booted host: count its boots. A block that cannot be
    /// written leaves the deployment staged, unprotected, with a warning (the change itself stands).
    func armBootCounter(for deployment: String) {
        let counter = bootCounter
        guard options.bootTries > 0, counter.exists else { return }
        do {
            try counter.arm(tries: options.bootTries, deployment: deployment)
        } catch {
            progress.message("warning: the boot counter could not be armed (\(error)); a failed boot of \(deployment) will not fall back")
        }
    }

    /// After the default changed (rollback, cleanup): a counter armed for a deployment that is
    /// neither the booted one nor pending any more is cleared, so the menu never counts down on a
    /// deployment that already booted and falls back past it.
    func disarmStaleBootCounter(_ sysroot: Sysroot) {
        let counter = bootCounter
        guard counter.exists else { return }
        let deployment: String?
        switch counter.read().state {
        case .unarmed: return
        case .armed(_, let d), .fellBack(let d): deployment = d
        }
        if let deployment, pendingDeployments(sysroot).contains(deployment) { return }
        try? counter.clear()
    }

    /// A deployment as the counter names it: `CHECKSUM.SERIAL` (a kernel-argument change keeps
    /// the commit, not the serial).
    static func counterName(_ d: Deployment) -> String { "\(d.checksum).\(d.serial)" }

    /// The staged deployment and a default that is not the booted one.
    func pendingDeployments(_ sysroot: Sysroot) -> Set<String> {
        let booted = sysroot.booted
        var pending = Set(sysroot.deployments.filter(\.isStaged).map(Self.counterName))
        if let osname = try? osname(sysroot), let first = deployments(sysroot, osname).first(where: { !$0.isStaged }),
            !(booted.map(first.isSame) ?? false)
        {
            pending.insert(Self.counterName(first))
        }
        return pending
    }

    /// What the agent runs once per boot, before anything else changes the host: a fall-back is
    /// handled (the booted deployment becomes the default, the counter is cleared, the fall-back
    /// recorded for this boot's `status`), a stale counter is cleared, and an armed one is
    /// reported. Each step leaves a block that boots safely if power is lost right after it:
    /// the counter is first re-armed with one try for the failed deployment (a cut before the
    /// reorder boots it once more, then falls back again), then the deployments are reordered,
    /// which disarms it.
    public func checkBoot() throws -> BootCheck {
        let counter = bootCounter
        guard counter.exists else { return .notCounted }
        let sysroot = try openSysroot()
        guard let booted = sysroot.booted else { return .notCounted }
        let bootedName = Self.counterName(booted)
        switch counter.read().state {
        case .unarmed:
            return .unarmed
        case .armed(let tries, let deployment):
            if deployment == bootedName { return .onTrial(deployment: bootedName, triesLeft: tries) }
            if let deployment, pendingDeployments(sysroot).contains(deployment) { return .waiting(deployment: deployment, triesLeft: tries) }
            try counter.clear()
            return .clearedStale(deployment: deployment)
        case .fellBack(let deployment):
            // Nothing to fall back to (one deployment): the menu booted the armed one after all.
            if deployment == bootedName { return .onTrial(deployment: bootedName, triesLeft: 0) }
            let osname = try osname(sysroot)
            let defaultDeployment = deployments(sysroot, osname).first { !$0.isStaged }
            let failed = deployment ?? defaultDeployment.flatMap { $0.isSame(as: booted) ? nil : Self.counterName($0) }
            if let defaultDeployment, !defaultDeployment.isSame(as: booted) {
                if let failed { try counter.arm(tries: 1, deployment: failed) }
                _ = try rollback()
            }
            try counter.clear()
            let record = BootFallback(failedDeployment: failed, bootedDeployment: bootedName, handledAt: Int64(Date().timeIntervalSince1970))
            let file = FallbackRecord(bootID: BootID.current, failed: failed, booted: bootedName, handledAt: record.handledAt)
            if let data = try? JSONEncoder().encode(file) {
                try? FileTree.makeDirectory((bootFallbackRecord as NSString).deletingLastPathComponent)
                try? FileTree.write(bootFallbackRecord, String(decoding: data, as: UTF8.self))
            }
            return .fellBack(record)
        }
    }

    /// Clears the counter when it protects the booted deployment (the boot is good); true when it did.
    @discardableResult
    public func markBootGood() throws -> Bool {
        let counter = bootCounter
        guard counter.exists, let booted = try openSysroot().booted else { return false }
        let bootedName = Self.counterName(booted)
        switch counter.read().state {
        case .armed(_, let deployment) where deployment == bootedName, .fellBack(let deployment) where deployment == bootedName:
            try counter.clear()
            return true
        default: return false
        }
    }

    /// The counter as `status` shows it; nil when the sysroot has no block.
    func bootCounterStatus() -> BootCounterStatus? {
        let counter = bootCounter
        guard counter.exists else { return nil }
        let fallback = FileManager.default.contents(atPath: bootFallbackRecord)
            .flatMap { try? JSONDecoder().decode(FallbackRecord.self, from: $0) }
            .flatMap {
                $0.bootID == BootID.current ? BootFallback(failedDeployment: $0.failed, bootedDeployment: $0.booted, handledAt: $0.handledAt) : nil
            }
        let (state, problem) = counter.read()
        switch state {
        case .unarmed: return BootCounterStatus(state: .unarmed, fallback: fallback, problem: problem)
        case .armed(let tries, let deployment):
            return BootCounterStatus(state: .armed, triesLeft: tries, deployment: deployment, fallback: fallback, problem: problem)
        case .fellBack(let deployment): return BootCounterStatus(state: .fellBack, deployment: deployment, fallback: fallback, problem: problem)
        }
    }

    /// The fall-back as recorded under /run, with the boot it belongs to.
    struct FallbackRecord: Codable {
        var bootID: String
        var failed: String?
        var booted: String
        var handledAt: Int64
    }
}
