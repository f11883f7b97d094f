import APTLayerEngine
import Foundation

// The status document and package types between the engine and the API. The engine's
// `StatusDocument` and this schema are checked against openapi/status-v1.schema.json in the tests.

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
            timestamp: Int64(d.timestamp), origin: d.origin, booted: d.booted, _default: d.default, staged: d.staged, pinned: d.pinned,
            baseChecksum: d.baseChecksum, baseVersion: d.baseVersion, baseTimestamp: d.baseTimestamp.map { Int64($0) },
            requestedPackages: d.requestedPackages, requestedLocalPackages: d.requestedLocalPackages,
            requestedBaseRemovals: d.requestedBaseRemovals, layeredPackages: d.layeredPackages, kernelArguments: d.kernelArguments)
    }
}

extension Components.Schemas.StatusDocument {
    /// The published status document of `document`, with the agent and its running transaction
    /// when an agent serves it.
    public init(_ document: StatusDocument, agent: Components.Schemas.AgentInfo? = nil, transaction: Components.Schemas.Transaction? = nil) {
        self.init(
            schema: .aptLayer_statusV1, sysroot: document.sysroot, deployments: document.deployments.map(Components.Schemas.Deployment.init),
            agent: agent, transaction: transaction)
    }
}
