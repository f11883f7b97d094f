import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import Foundation
import OpenAPIRuntime

/// The generated API protocol, implemented on the engine and the transaction manager.
public struct APIHandler: APIProtocol {
    let manager: TransactionManager
    let journal: Journal
    let engineOptions: Engine.Options
    let started: ContinuousClock.Instant
    let statusCache: StatusCache
    static let version = "0.2.0"

    /// Creates the handler.
    public init(manager: TransactionManager, journal: Journal, engineOptions: Engine.Options, started: ContinuousClock.Instant = .now) {
        self.manager = manager
        self.journal = journal
        self.engineOptions = engineOptions
        self.started = started
        self.statusCache = StatusCache(sysroot: engineOptions.sysroot)
    }

    func statusDocument() async throws -> StatusDocument {
        try await statusCache.document { try await read { try $0.status() } }
    }

    /// Runs a read-only engine call off the cooperative pool; reads never take the sysroot lock.
    func read<T: Sendable>(_ body: @escaping @Sendable (Engine) throws -> T) async throws -> T {
        let options = engineOptions
        do {
            return try await Engine.run { _ in try body(Engine(options: options)) }
        } catch let error as EngineError {
            throw AgentProblem.engine(error)
        }
    }

    public func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: "ok"))))
    }

    public func getStatus(_ input: Operations.GetStatus.Input) async throws -> Operations.GetStatus.Output {
        let document = try await statusDocument()
        let current = await manager.current
        let uptime = ContinuousClock.now - started
        let seconds = Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18
        return .ok(
            .init(
                body: .json(
                    .init(
                        schema: .aptLayer_statusV1,
                        sysroot: document.sysroot,
                        deployments: document.deployments.map(Self.deployment),
                        agent: .init(version: Self.version, uptimeSeconds: seconds),
                        transaction: try current.map(Self.transaction)))))
    }

    public func listDeployments(_ input: Operations.ListDeployments.Input) async throws -> Operations.ListDeployments.Output {
        let document = try await statusDocument()
        return .ok(.init(body: .json(.init(deployments: document.deployments.map(Self.deployment)))))
    }

    public func listDeploymentPackages(_ input: Operations.ListDeploymentPackages.Input) async throws
        -> Operations.ListDeploymentPackages.Output
    {
        let index = input.path.index
        let packages = try await read { try $0.packages(deployment: index) }
        return .ok(.init(body: .json(.init(packages: packages.map(Self.package)))))
    }

    public func getPackageDiff(_ input: Operations.GetPackageDiff.Input) async throws -> Operations.GetPackageDiff.Output {
        let (from, to) = (input.query.from, input.query.to)
        let diff = try await read { try $0.packageDiff(from: from, to: to) }
        return .ok(
            .init(
                body: .json(
                    .init(
                        added: diff.added.map(Self.package), removed: diff.removed.map(Self.package),
                        upgraded: diff.upgraded.map { .init(name: $0.name, from: $0.from, to: $0.to) },
                        downgraded: diff.downgraded.map { .init(name: $0.name, from: $0.from, to: $0.to) }))))
    }

    public func createTransaction(_ input: Operations.CreateTransaction.Input) async throws -> Operations.CreateTransaction.Output {
        guard case .json(let request) = input.body else { throw AgentProblem.badRequest("expected application/json") }
        let caller = Caller.current
        let (record, outcome) = try await manager.submit(
            operation: request.operation, arguments: request.arguments ?? .init(), idempotencyKey: request.idempotencyKey,
            requester: caller.identity, role: caller.role, wait: input.query.wait ?? false)
        let transaction = try Self.transaction(record)
        switch outcome {
        case .accepted:
            return .accepted(.init(headers: .init(location: "/v1/transactions/\(record.id)"), body: .json(transaction)))
        case .existing:
            return .ok(.init(body: .json(transaction)))
        }
    }

    public func listTransactions(_ input: Operations.ListTransactions.Input) async throws -> Operations.ListTransactions.Output {
        var before: Int64?
        if let cursor = input.query.cursor {
            guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8), text.hasPrefix("seq:"),
                let seq = Int64(text.dropFirst(4)), seq > 0
            else { throw AgentProblem.badRequest("invalid cursor") }
            before = seq
        }
        let limit = input.query.limit ?? 50
        guard (1...500).contains(limit) else { throw AgentProblem.badRequest("limit must be between 1 and 500") }
        let records = try journal.transactions(
            state: input.query.state?.rawValue, operation: input.query.operation?.rawValue, since: input.query.since, before: before,
            limit: limit + 1)
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last?.seq.map { Data("seq:\($0)".utf8).base64EncodedString() } : nil
        return .ok(.init(body: .json(.init(transactions: try page.map(Self.transaction), nextCursor: next))))
    }

    public func getTransaction(_ input: Operations.GetTransaction.Input) async throws -> Operations.GetTransaction.Output {
        guard let record = try journal.transaction(id: input.path.id) else { throw AgentProblem.notFound("no transaction \(input.path.id)") }
        return .ok(.init(body: .json(try Self.transaction(record))))
    }

    public func cancelTransaction(_ input: Operations.CancelTransaction.Input) async throws -> Operations.CancelTransaction.Output {
        let caller = Caller.current
        let record = try await manager.cancel(id: input.path.id, requester: caller.identity, role: caller.role)
        return .accepted(.init(body: .json(try Self.transaction(record))))
    }

    public func getTransactionEvents(_ input: Operations.GetTransactionEvents.Input) async throws -> Operations.GetTransactionEvents.Output {
        guard let events = try await manager.events(id: input.path.id) else { throw AgentProblem.notFound("no transaction \(input.path.id)") }
        let bytes = events.map { event in ArraySlice(Array("id: \(event.number)\nevent: \(event.kind)\ndata: \(event.data)\n\n".utf8)) }
        return .ok(.init(body: .textEventStream(HTTPBody(bytes, length: .unknown, iterationBehavior: .single))))
    }
}
