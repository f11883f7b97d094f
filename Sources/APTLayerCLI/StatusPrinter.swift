import APTLayerAPI
import APTLayerEngine
import APTLayerModel
import Foundation

/// `apt-layer status` as rpm-ostree prints it: the `State:` line and the running transaction, then
/// each deployment in boot order (● booted, → default when not booted) with right-aligned labels;
/// `Diff:` on the deployment that boots next when it differs from the booted one.
enum StatusPrinter {
    /// The text for `host`; `diff` is the change the next boot makes, when there is one.
    static func text(_ host: HostStatus, diff: PackageDiff? = nil, verbose: Bool = false) -> String {
        var out = "State: \(host.running == nil ? "idle" : "busy")\n"
        if let t = host.running {
            let what = ([t.operation.kind.rawValue] + (t.operation.arguments.packages ?? [])).joined(separator: " ")
            out += "Transaction: \(what) (\(t.id), \(t.state.rawValue), by \(t.requester) since \(RFC3339.string(t.startedAt ?? t.createdAt)))\n"
        }
        if let agent = host.agent, verbose { out += "Agent: apt-layerd \(agent.version)\n" }
        if let counter = host.status.bootCounter { out += bootLines(counter) }
        let deployments = host.status.deployments
        if deployments.isEmpty { return out + "Deployments: none\n" }
        out += "Deployments:\n"
        for d in deployments {
            let marker = d.booted ? "●" : (d.default ? "→" : " ")
            var flags: [String] = []
            if d.default && !d.booted { flags.append("default") }
            if d.staged { flags.append("staged") }
            if d.pinned { flags.append("pinned") }
            out += "\(marker) [\(d.index)] \(d.osname):\(d.origin ?? "(no origin)")\(flags.isEmpty ? "" : " (\(flags.joined(separator: ", ")))")\n"
            var lines: [(String, String)] = []
            lines.append(("Version", "\(d.version ?? "-") (\(RFC3339.string(Date(timeIntervalSince1970: TimeInterval(d.timestamp)))))"))
            if d.baseChecksum != d.checksum {
                lines.append(("BaseCommit", d.baseChecksum))
                if verbose, let baseVersion = d.baseVersion { lines.append(("BaseVersion", baseVersion)) }
            }
            lines.append(("Commit", d.checksum))
            if let diff, d.default, !d.booted { lines.append(("Diff", DiffPrinter.counts(diff))) }
            if !d.requestedBaseRemovals.isEmpty { lines.append(("RemovedBasePackages", d.requestedBaseRemovals.joined(separator: " "))) }
            if !d.replacedBasePackages.isEmpty {
                lines.append(
                    ("ReplacedBasePackages", d.replacedBasePackages.map { "\($0.name) \($0.baseVersion) → \($0.version)" }.joined(separator: ", ")))
            }
            if let live = d.live { lines += liveLines(live, verbose: verbose) }
            if !d.requestedPackages.isEmpty { lines.append(("LayeredPackages", d.requestedPackages.joined(separator: " "))) }
            if !d.requestedLocalPackages.isEmpty {
                lines.append(
                    (
                        "LocalPackages",
                        d.requestedLocalPackages.map { verbose ? "\($0.nameVersionArch) (\($0.sha256))" : $0.nameVersionArch }.joined(separator: " ")
                    ))
            }
            if verbose {
                if !d.layeredPackages.isEmpty {
                    lines.append(("Installed", d.layeredPackages.map { "\($0.name) \($0.version)" }.joined(separator: ", ")))
                }
                lines.append(("Id", d.id))
                lines.append(("KernelArguments", d.kernelArguments.isEmpty ? "(none)" : d.kernelArguments))
            }
            for (label, value) in lines { out += String(repeating: " ", count: max(0, 20 - label.count)) + "\(label): \(value)\n" }
        }
        return out
    }

    /// rpm-ostree's `LiveCommit:` and `LiveDiff:` for the booted deployment (`-v`: the packages).
    static func liveLines(_ live: LiveState, verbose: Bool) -> [(String, String)] {
        var lines: [(String, String)] = []
        if let commit = live.commit { lines.append(("LiveCommit", "\(commit) (applied live)")) }
        if let target = live.inProgress {
            lines.append(("LiveInProgress", "\(target) (interrupted at \(live.phase.rawValue): apply-live resumes, apply-live --reset undoes)"))
        }
        var counts: [String] = []
        if !live.addedPackages.isEmpty { counts.append("\(live.addedPackages.count) added") }
        if !live.changedPackages.isEmpty { counts.append("\(live.changedPackages.count) changed") }
        if !live.removedPackages.isEmpty { counts.append("\(live.removedPackages.count) removed") }
        if !counts.isEmpty { lines.append(("LiveDiff", counts.joined(separator: ", "))) }
        if verbose {
            if !live.addedPackages.isEmpty { lines.append(("LiveAdded", live.addedPackages.joined(separator: ", "))) }
            if !live.changedPackages.isEmpty { lines.append(("LiveChanged", live.changedPackages.joined(separator: ", "))) }
            if !live.removedPackages.isEmpty { lines.append(("LiveRemoved", live.removedPackages.joined(separator: ", "))) }
        }
        if !live.notStarted.isEmpty { lines.append(("LiveNotStarted", live.notStarted.joined(separator: " "))) }
        if !live.keptEtc.isEmpty { lines.append(("LiveKeptEtc", live.keptEtc.joined(separator: " "))) }
        return lines
    }

    /// `BootCounter:` (armed or not handled yet) and `LastBoot:` (a fall-back this boot), nothing when unarmed.
    static func bootLines(_ counter: BootCounterStatus) -> String {
        var out = ""
        if let fallback = counter.fallback {
            let failed = fallback.failedDeployment.map { String($0.prefix(12)) } ?? "the default deployment"
            out += "LastBoot: fell back from \(failed) to \(fallback.bootedDeployment.prefix(12)) (it did not come up; now the default again)\n"
        }
        switch counter.state {
        case .unarmed: break
        case .armed:
            let tries = counter.triesLeft.map { "\($0) \($0 == 1 ? "try" : "tries") left" } ?? "armed"
            out += "BootCounter: armed for \(counter.deployment.map { String($0.prefix(12)) } ?? "the default deployment") (\(tries))\n"
        case .fellBack:
            out += "BootCounter: fell back from \(counter.deployment.map { String($0.prefix(12)) } ?? "the default deployment") (not handled yet)\n"
        }
        if let problem = counter.problem { out += "BootCounter: unreadable, boots the default entry (\(problem))\n" }
        return out
    }
}
