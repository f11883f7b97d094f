import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation

/// The read verbs' one source: through the agent when one is in use (`--agent`, or the local
/// socket), else the engine on the sysroot. Both paths answer with the API's types, so the
/// printers, the output and the exit code are the same whichever path ran.
enum HostReads {
    /// The status document, with the running transaction (the agent's, or the sysroot journal's),
    /// and with `nextBootDiff` the change the next boot makes (``nextBootDiffers(_:)``), read over
    /// the same connection or engine.
    static func status(_ global: GlobalOptions, nextBootDiff: Bool = false) throws -> (
        document: Components.Schemas.StatusDocument, diff: PackageDiff?
    ) {
        if let endpoint = global.agentEndpoint {
            return try blocking {
                try await AgentClient.with(endpoint) { client in
                    let document = try await client.status()
                    guard nextBootDiff, nextBootDiffers(document) else { return (document, nil) }
                    return (document, try? await client.packageDiff(from: nil, to: nil).diff.model)
                }
            }
        }
        let engine = global.host()
        let journal = try? readJournal(global)
        let running = try? journal?.transactions(state: .running, operation: nil, limit: 1).first
        let document = Components.Schemas.StatusDocument(try engine.status(), transaction: running.map(Components.Schemas.Transaction.init))
        guard nextBootDiff, nextBootDiffers(document) else { return (document, nil) }
        return (document, try? engine.packageDiff(from: nil, to: nil).diff)
    }

    /// Whether the deployment that boots next is not the booted one and has another of its
    /// stateroot to compare with: rpm-ostree's `Diff:` line (against the booted one, or on a sysroot
    /// nothing booted, against the rollback).
    static func nextBootDiffers(_ document: Components.Schemas.StatusDocument) -> Bool {
        guard let next = document.deployments.first(where: \._default), !next.booted else { return false }
        return document.deployments.filter { $0.osname == next.osname }.count > 1
    }

    /// `db diff` between two selectors (index, checksum prefix of a deployment, ref, commit).
    static func packageDiff(_ global: GlobalOptions, from: String?, to: String?) throws -> PackageDiffReport {
        if let endpoint = global.agentEndpoint {
            return try blocking { try await AgentClient.with(endpoint) { try await $0.packageDiff(from: from, to: to) } }.model
        }
        return try global.host().packageDiff(from: from, to: to)
    }

    /// The installed packages of the deployment at `index` (default: the booted one, else the default).
    static func packages(_ global: GlobalOptions, index: Int?) throws -> [Package] {
        if let endpoint = global.agentEndpoint {
            return try blocking {
                try await AgentClient.with(endpoint) { client in
                    var chosen = index
                    if chosen == nil {
                        let deployments = try await client.status().deployments
                        chosen = deployments.first(where: \.booted)?.index ?? deployments.first?.index
                    }
                    guard let chosen else { throw AgentClient.Failure(message: "no deployment") }
                    return try await client.packages(index: chosen).map(\.model)
                }
            }
        }
        return try global.host().packages(deployment: index)
    }

    /// The kernel arguments of the deployment that boots next.
    static func kernelArguments(_ global: GlobalOptions) throws -> String {
        if global.agentEndpoint != nil {
            let document = try status(global).document
            guard let next = document.deployments.first(where: \._default) else { throw AgentClient.Failure(message: "no deployment") }
            return next.kernelArguments
        }
        return try global.host().currentKernelArguments()
    }
}
