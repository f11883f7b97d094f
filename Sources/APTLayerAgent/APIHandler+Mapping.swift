import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import Foundation

extension APIHandler {
    static func package(_ p: Package) -> Components.Schemas.Package {
        .init(name: p.name, version: p.version, architecture: p.architecture)
    }

    static func deployment(_ d: StatusDocument.DeploymentStatus) -> Components.Schemas.Deployment {
        .init(
            index: d.index, id: d.id, osname: d.osname, serial: d.serial, checksum: d.checksum, version: d.version,
            timestamp: Int64(d.timestamp), origin: d.origin, booted: d.booted, _default: d.default, staged: d.staged, pinned: d.pinned,
            baseChecksum: d.baseChecksum, baseVersion: d.baseVersion, baseTimestamp: d.baseTimestamp.map(Int64.init),
            requestedPackages: d.requestedPackages, requestedLocalPackages: d.requestedLocalPackages,
            requestedBaseRemovals: d.requestedBaseRemovals, layeredPackages: d.layeredPackages, kernelArguments: d.kernelArguments)
    }

    static func transaction(_ r: TransactionRecord) throws -> Components.Schemas.Transaction {
        let arguments = try JSONDecoder().decode(Components.Schemas.TransactionArguments.self, from: Data(r.arguments.utf8))
        guard let operation = Components.Schemas.Operation(rawValue: r.operation),
            let state = Components.Schemas.TransactionState(rawValue: r.state)
        else { throw AgentProblem(status: 500, slug: "journal", title: "Unreadable journal row", detail: r.id) }
        return .init(
            id: r.id, operation: operation, arguments: arguments, state: state, requester: r.requester, idempotencyKey: r.idempotencyKey,
            createdAt: r.createdAt, startedAt: r.startedAt, finishedAt: r.finishedAt, changed: r.changed, summary: r.summary,
            resultChecksum: r.resultChecksum, error: r.error)
    }
}
