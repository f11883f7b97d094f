import APTLayerAPI
import APTLayerDriver
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTransaction
import Foundation
import OpenAPIRuntime

/// The generated API protocol, implemented on the engine and the transaction manager. Requests are
/// converted to the typed model at this edge (`APTLayerAPI`'s conversions) and nowhere else.
public struct APIHandler: APIProtocol {
    let manager: TransactionManager
    let journal: Journal
    let engineOptions: Engine.Options
    let started: ContinuousClock.Instant
    let statusCache: StatusCache
    let allowRemoteHostPaths: Bool
    let uploadLimits: UploadLimits
    let uploadsInFlight = UploadsInFlight()
    let journalReset: Journal.Reset?
    /// The fleet update driver, when the configuration has a `fleet:` section.
    let driver: UpdateDriver?
    static let version = APTLayerVersion.current

    /// Creates the handler.
    public init(
        manager: TransactionManager, journal: Journal, engineOptions: Engine.Options, statusCache: StatusCache,
        allowRemoteHostPaths: Bool = false, uploadLimits: UploadLimits = .init(), journalReset: Journal.Reset? = nil,
        started: ContinuousClock.Instant = .now, driver: UpdateDriver? = nil
    ) {
        self.driver = driver
        self.uploadLimits = uploadLimits
        self.journalReset = journalReset
        self.allowRemoteHostPaths = allowRemoteHostPaths
        self.manager = manager
        self.journal = journal
        self.engineOptions = engineOptions
        self.started = started
        self.statusCache = statusCache
    }

    /// Runs a read-only engine call off the cooperative pool; reads never take the sysroot lock.
    func read<T: Sendable>(_ body: @escaping @Sendable (Engine) throws -> T) async throws -> T {
        let options = engineOptions
        return try await Self.offPool { try body(Engine(options: options)) }
    }

    /// A journal read on the journal's own queue; a failure is our fault (500).
    func fromJournal<T: Sendable>(_ body: @escaping @Sendable (Journal) throws -> T) async throws -> T {
        do { return try await journal.off(body) } catch {
            throw AgentProblem.transaction(.journal(transaction: nil, cause: error))
        }
    }

    public func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        .ok(.init(body: .json(.init(status: "ok"))))
    }

    /// Seconds since the agent started.
    var uptimeSeconds: Double {
        let uptime = ContinuousClock.now - started
        return Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18
    }

    /// The `agent` member of the status document (``StatusBytes`` splices its uptime).
    func agentInfo(uptimeSeconds: Double) -> Components.Schemas.AgentInfo {
        .init(
            version: Self.version, uptimeSeconds: uptimeSeconds,
            journalReset: journalReset.map { .init(at: $0.at, movedTo: $0.movedTo, reason: $0.reason) })
    }

    public func getStatus(_ input: Operations.GetStatus.Input) async throws -> Operations.GetStatus.Output {
        let document = try await statusCache.document(engineOptions)
        let status = Components.Schemas.StatusDocument(
            document, agent: agentInfo(uptimeSeconds: uptimeSeconds),
            transaction: manager.currentSnapshot.map(Components.Schemas.Transaction.init))
        return .ok(.init(body: .json(status)))
    }

    public func listDeployments(_ input: Operations.ListDeployments.Input) async throws -> Operations.ListDeployments.Output {
        let document = try await statusCache.document(engineOptions)
        return .ok(.init(body: .json(.init(deployments: document.deployments.map(Components.Schemas.Deployment.init)))))
    }

    public func listDeploymentPackages(_ input: Operations.ListDeploymentPackages.Input) async throws
        -> Operations.ListDeploymentPackages.Output
    {
        let index = input.path.index
        let packages = try await read { try $0.packages(deployment: index) }
        return .ok(.init(body: .json(.init(packages: packages.map(Components.Schemas.Package.init)))))
    }

    public func getPackageDiff(_ input: Operations.GetPackageDiff.Input) async throws -> Operations.GetPackageDiff.Output {
        let (from, to) = (input.query.from, input.query.to)
        for (name, value) in [("from", from), ("to", to)] {
            guard let value else { continue }
            guard (1...256).contains(value.count) else { throw DecodingProblem.make("/query/\(name)", "must be 1 to 256 characters", allowed: nil) }
        }
        let report = try await read { try $0.packageDiff(from: from, to: to) }
        return .ok(.init(body: .json(.init(report))))
    }

    public func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws -> Operations.GetOpenAPIDocument.Output {
        .ok(.init(body: .yaml(HTTPBody(openAPIDocument))))
    }

    public func createTransaction(_ input: Operations.CreateTransaction.Input) async throws -> Operations.CreateTransaction.Output {
        guard case .json(let request) = input.body else { throw AgentProblem.badRequest("expected application/json") }
        let (operation, idempotencyKey): (HostOperation, String?)
        do { (operation, idempotencyKey) = try request.decoded() } catch { throw AgentProblem.invalidOperation(error.message) }
        if let key = idempotencyKey {
            guard (1...200).contains(key.count) else { throw AgentProblem.badRequest("idempotencyKey must be 1 to 200 characters") }
            guard !key.containsControlCharacters else { throw AgentProblem.invalidOperation("idempotencyKey must be printable") }
        }
        let caller = Caller.current
        if caller.remote && !allowRemoteHostPaths, let path = operation.hostPaths.first {
            throw AgentProblem.forbidden(
                "host path \(path) refused over mTLS: install by package name, or set allow-remote-host-paths in the agent configuration")
        }
        // A local user installs only files it could read itself, and a missing file and an
        // unreadable one get the same words (no probing of root-only paths through the agent).
        if !caller.remote, caller.identity.hasPrefix("uid:"), let uid = uid_t(caller.identity.dropFirst(4)), uid != 0 {
            for path in operation.hostPaths where !HostPathAccess.readable(path, uid: uid) {
                throw AgentProblem.invalidOperation("cannot read \(path) as \(caller.identity): no such file, or not readable by that user")
            }
        }
        let (record, outcome): (TransactionRecord, TransactionManager.Outcome)
        do {
            (record, outcome) = try await manager.submit(
                operation, idempotencyKey: idempotencyKey, requester: caller.identity, role: caller.role.rawValue,
                wait: input.query.wait ?? false)
        } catch { throw AgentProblem.transaction(error) }
        let transaction = Components.Schemas.Transaction(record)
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
            guard let seq = Int64(cursor), seq > 0, cursor.allSatisfy(\.isASCII) else {
                throw AgentProblem.badRequest("invalid cursor")
            }
            before = seq
        }
        let limit = input.query.limit ?? 50
        guard (1...500).contains(limit) else { throw AgentProblem.badRequest("limit must be between 1 and 500") }
        let (state, kind, since, cursor) = (input.query.state?.model, input.query.operation?.model, input.query.since, before)
        let records = try await fromJournal { try $0.transactions(state: state, operation: kind, since: since, before: cursor, limit: limit + 1) }
        let page = Array(records.prefix(limit))
        let next = records.count > limit ? page.last?.seq.map { String($0) } : nil
        return .ok(.init(body: .json(.init(transactions: page.map(Components.Schemas.Transaction.init), nextCursor: next))))
    }

    public func getTransaction(_ input: Operations.GetTransaction.Input) async throws -> Operations.GetTransaction.Output {
        let id = input.path.id
        if let pending = manager.unjournaledRecord(id: id) { return .ok(.init(body: .json(.init(pending)))) }
        guard let record = try await fromJournal({ try $0.transaction(id: id) }) else { throw AgentProblem.notFound("no transaction \(id)") }
        return .ok(.init(body: .json(.init(record))))
    }

    public func cancelTransaction(_ input: Operations.CancelTransaction.Input) async throws -> Operations.CancelTransaction.Output {
        let caller = Caller.current
        do {
            let record = try await manager.cancel(id: input.path.id, requester: caller.identity, mayCancelOthers: caller.role >= .admin)
            return .accepted(.init(body: .json(.init(record))))
        } catch { throw AgentProblem.transaction(error) }
    }

    public func getTransactionEvents(_ input: Operations.GetTransactionEvents.Input) async throws -> Operations.GetTransactionEvents.Output {
        let stream: AsyncStream<EventRecord>?
        do { stream = try await manager.events(id: input.path.id) } catch { throw AgentProblem.transaction(error) }
        guard let stream else { throw AgentProblem.notFound("no transaction \(input.path.id)") }
        typealias Event = ServerSentEventWithJSONData<Components.Schemas.TransactionEvent>
        let events = AsyncStream<Event> { continuation in
            let pump = Task {
                for await record in stream {
                    continuation.yield(Event(event: record.event.kind.rawValue, data: .init(record.event), id: String(record.number)))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
        let body = HTTPBody(events.asEncodedServerSentEventsWithJSONData(), length: .unknown, iterationBehavior: .single)
        return .ok(.init(body: .textEventStream(body)))
    }
}
