import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation

/// ``HostService`` through the agent: each call opens the generated client on the endpoint.
struct AgentHostService: HostService {
    let endpoint: AgentClient.Endpoint

    func status(nextBootDiff: Bool) async throws -> (status: HostStatus, diff: PackageDiff?) {
        try await AgentClient.with(endpoint) { client in
            let status = try HostStatus(try await client.status())
            guard nextBootDiff, nextBootDiffers(status.status) else { return (status, nil) }
            return (status, try? await client.packageDiff(from: nil, to: nil).diff.model)
        }
    }

    func packageDiff(from: String?, to: String?) async throws -> PackageDiffReport {
        try await AgentClient.with(endpoint) { try await $0.packageDiff(from: from, to: to) }.model
    }

    func packages(deployment index: Int?) async throws -> [Package] {
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

    func kernelArguments() async throws -> String {
        let document = try await status(nextBootDiff: false).status.status
        guard let next = document.deployments.first(where: \.default) else { throw AgentClient.Failure(message: "no deployment") }
        return next.kernelArguments
    }

    func transactions(state: TransactionState?, kind: HostOperation.Kind?, limit: Int) async throws -> [TransactionRecord] {
        try await AgentClient.with(endpoint) { try await $0.transactions(state: state, kind: kind, limit: limit) }.map { try Self.record($0) }
    }

    func transaction(id: String) async throws -> TransactionRecord {
        try Self.record(try await AgentClient.with(endpoint) { try await $0.transaction(id) })
    }

    /// The journal's form of an agent's transaction document.
    static func record(_ t: Components.Schemas.Transaction) throws -> TransactionRecord {
        do { return try t.model() } catch {
            throw AgentClient.Failure(message: "transaction \(t.id) from the agent is not a valid operation: \(error)")
        }
    }

    func cancel(id: String?) async throws -> String? {
        try await AgentClient.with(endpoint) { client -> String? in
            var target = id
            if target == nil { target = try await client.status().transaction?.id }
            guard let target else { return nil }
            return try await client.cancel(target).id
        }
    }

    /// Start, stream events (Ctrl-C asks the agent to cancel), read the result.
    func run(_ operation: HostOperation, quiet: Bool, wait: Bool) async throws -> TransactionOutcome {
        try await AgentClient.with(endpoint) { client in
            let operation = try await client.uploadingHostFiles(operation, quiet: quiet)
            let (transaction, joined) = try await client.start(operation, wait: wait)
            let id = transaction.id
            if joined && !quiet { FileHandle.standardError.write(Data("Joined running transaction \(id)\n".utf8)) }
            SignalCancellation.onSignal {
                FileHandle.standardError.write(Data("Cancelling \(id)...\n".utf8))
                Task { _ = try? await client.cancel(id) }
            }
            do {
                try await TransactionRunner.render(try await client.events(id), quiet: quiet)
                return TransactionOutcome(try Self.record(try await client.transaction(id)))
            } catch let failure as AgentClient.Failure {
                // The agent went away while the transaction ran (a restart): it may have finished.
                throw AgentClient.Failure(
                    message: "lost the agent while following transaction \(id) (\(failure.message)); "
                        + "it may have finished: see apt-layer transaction show \(id)")
            }
        }
    }
}
