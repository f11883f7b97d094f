import APTLayerEngine
import APTLayerModel
import Foundation

// The status document and package types between the engine and the API. The engine's
// `StatusDocument` and this schema are checked against openapi/status-v2.schema.json in the tests.

extension Components.Schemas.Package {
    /// The API form of a package.
    public init(_ p: Package) { self.init(name: p.name, version: p.version, architecture: p.architecture) }
    /// The engine's form.
    public var model: Package { Package(name: name, version: version, architecture: architecture) }
}

extension Components.Schemas.PackageDiff {
    /// The API form of a package diff.
    public init(_ d: PackageDiff) {
        self.init(
            added: d.added.map(Components.Schemas.Package.init), removed: d.removed.map(Components.Schemas.Package.init),
            upgraded: d.upgraded.map { .init(name: $0.name, from: $0.from, to: $0.to) },
            downgraded: d.downgraded.map { .init(name: $0.name, from: $0.from, to: $0.to) })
    }

    /// The engine's form.
    public var model: PackageDiff {
        PackageDiff(
            added: added.map(\.model), removed: removed.map(\.model), upgraded: upgraded.map { .init(name: $0.name, from: $0.from, to: $0.to) },
            downgraded: downgraded.map { .init(name: $0.name, from: $0.from, to: $0.to) })
    }
}

extension Components.Schemas.Deployment {
    /// The API form of one deployment's status.
    public init(_ d: StatusDocument.DeploymentStatus) {
        self.init(
            index: d.index, id: d.id, osname: d.osname, serial: d.serial, checksum: d.checksum, version: d.version,
            committedAt: Date(timeIntervalSince1970: TimeInterval(d.timestamp)), origin: d.origin, booted: d.booted, _default: d.default,
            staged: d.staged, pinned: d.pinned,
            baseChecksum: d.baseChecksum, baseVersion: d.baseVersion,
            baseCommittedAt: d.baseTimestamp.map { Date(timeIntervalSince1970: TimeInterval($0)) },
            requestedPackages: d.requestedPackages,
            requestedLocalPackages: d.requestedLocalPackages.map { .init(sha256: $0.sha256, name: $0.name, file: $0.nameVersionArch) },
            requestedBaseRemovals: d.requestedBaseRemovals, layeredPackages: d.layeredPackages.map(Components.Schemas.Package.init),
            kernelArguments: d.kernelArguments,
            replacedBasePackages: d.replacedBasePackages.isEmpty
                ? nil : d.replacedBasePackages.map { .init(name: $0.name, baseVersion: $0.baseVersion, version: $0.version) },
            live: d.live.map(Components.Schemas.LiveState.init))
    }

    /// The model's form (the CLI prints from it; times are whole seconds in both).
    public var model: StatusDocument.DeploymentStatus {
        var status = StatusDocument.DeploymentStatus(
            index: index, id: id, osname: osname, serial: serial, checksum: checksum, version: version,
            timestamp: UInt64(max(0, committedAt.timeIntervalSince1970.rounded(.down))), origin: origin, booted: booted, default: _default,
            staged: staged, pinned: pinned, baseChecksum: baseChecksum, baseVersion: baseVersion,
            baseTimestamp: baseCommittedAt.map { UInt64(max(0, $0.timeIntervalSince1970.rounded(.down))) },
            requestedPackages: requestedPackages,
            requestedLocalPackages: requestedLocalPackages.map { .init(sha256: $0.sha256, name: $0.name, nameVersionArch: $0.file) },
            requestedBaseRemovals: requestedBaseRemovals, layeredPackages: layeredPackages.map(\.model), kernelArguments: kernelArguments)
        status.replacedBasePackages = (replacedBasePackages ?? []).map {
            PackageReplacement(name: $0.name, baseVersion: $0.baseVersion, version: $0.version)
        }
        status.live = live?.model(booted: "\(checksum).\(serial)")
        return status
    }
}

extension Components.Schemas.StatusDocument {
    /// The published status document of `document`, with the agent and its running transaction
    /// when an agent serves it.
    public init(_ document: StatusDocument, agent: Components.Schemas.AgentInfo? = nil, transaction: Components.Schemas.Transaction? = nil) {
        self.init(
            schema: .aptLayer_statusV2, sysroot: document.sysroot, deployments: document.deployments.map(Components.Schemas.Deployment.init),
            bootCounter: document.bootCounter.map(Components.Schemas.BootCounter.init), agent: agent, transaction: transaction)
    }

    /// The model's form of the deployments and the boot counter (the agent and running transaction are beside it).
    public var model: StatusDocument {
        StatusDocument(sysroot: sysroot, deployments: deployments.map(\.model), bootCounter: bootCounter?.model)
    }
}

extension Components.Schemas.BootCounter {
    /// The API form of the boot counter.
    public init(_ c: BootCounterStatus) {
        self.init(
            state: StatePayload(rawValue: c.state.rawValue) ?? .unarmed, triesLeft: c.triesLeft, deployment: c.deployment,
            fallback: c.fallback.map {
                .init(
                    failedDeployment: $0.failedDeployment, bootedDeployment: $0.bootedDeployment,
                    handledAt: Date(timeIntervalSince1970: TimeInterval($0.handledAt)))
            }, problem: c.problem)
    }

    /// The model's form.
    public var model: BootCounterStatus {
        BootCounterStatus(
            state: BootCounterStatus.State(rawValue: state.rawValue) ?? .unarmed, triesLeft: triesLeft, deployment: deployment,
            fallback: fallback.map {
                BootFallback(
                    failedDeployment: $0.failedDeployment, bootedDeployment: $0.bootedDeployment, handledAt: Int64($0.handledAt.timeIntervalSince1970)
                )
            }, problem: problem)
    }
}

extension Components.Schemas.PackageDiffReport {
    /// The API form of a `db diff` answer.
    public init(_ r: PackageDiffReport) {
        self.init(
            from: .init(label: r.from.label, checksum: r.from.checksum), to: .init(label: r.to.label, checksum: r.to.checksum),
            diff: .init(r.diff))
    }

    /// The engine's form.
    public var model: PackageDiffReport {
        PackageDiffReport(
            from: .init(label: from.label, checksum: from.checksum), to: .init(label: to.label, checksum: to.checksum), diff: diff.model)
    }
}

extension Components.Schemas.LiveState {
    /// The API form of a booted deployment's live state.
    public init(_ l: LiveState) {
        self.init(
            commit: l.commit, inProgress: l.inProgress, phase: .init(rawValue: l.phase.rawValue)!, overlay: l.overlay,
            addedPackages: l.addedPackages, changedPackages: l.changedPackages, removedPackages: l.removedPackages, keptEtc: l.keptEtc,
            notStarted: l.notStarted, started: l.started)
    }

    /// The model's form (`booted`: the deployment it belongs to).
    public func model(booted: String) -> LiveState {
        var l = LiveState(
            booted: booted, commit: commit, inProgress: inProgress, phase: LivePhase(rawValue: phase.rawValue) ?? .planned, overlay: overlay)
        l.addedPackages = addedPackages
        l.changedPackages = changedPackages
        l.removedPackages = removedPackages
        l.keptEtc = keptEtc
        l.notStarted = notStarted
        l.started = started
        return l
    }
}
