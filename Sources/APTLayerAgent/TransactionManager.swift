import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import Foundation
import Logging

/// Runs one mutating transaction at a time, journals every state change before answering, keeps a
/// bounded FIFO queue for `wait=true`, joins identical requests, honours idempotency keys, and
/// enforces a timeout.
public actor TransactionManager {
    /// How a submission was taken.
    public enum Outcome: Sendable {
        /// Started now or queued (202).
        case accepted
        /// Joined the identical running transaction, or replayed an idempotency key (200).
        case existing
    }

    struct Active {
        var record: TransactionRecord
        var call: OperationCall.Call
        var token: CancellationToken
        var channel: EventChannel
        var cancelReason: String?
        /// Cancels the transaction when it runs too long; itself cancelled when the transaction ends.
        var timer: Task<Void, Never>?
    }

    let journal: Journal
    let engineOptions: Engine.Options
    let timeout: Duration
    let queueLength: Int
    let retention: AgentConfiguration.Retention
    let logger: Logger
    let onStatus: @Sendable (String) -> Void
    private var running: Active?
    private var queue: [Active] = []
    private var channels: [String: EventChannel] = [:]
    private var counts: [String: Int] = [:]
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    /// Creates a manager.
    /// - Parameter onStatus: receives one line whenever the running transaction changes (systemd `STATUS=`).
    public init(
        journal: Journal, engineOptions: Engine.Options, timeout: Duration, queueLength: Int,
        retention: AgentConfiguration.Retention, logger: Logger, onStatus: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.journal = journal
        self.engineOptions = engineOptions
        self.timeout = timeout
        self.queueLength = queueLength
        self.retention = retention
        self.logger = logger
        self.onStatus = onStatus
    }

    static func canonical(_ arguments: Arguments) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(arguments)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Starts, queues or joins a transaction.
    public func submit(
        operation: Components.Schemas.Operation, arguments: Components.Schemas.TransactionArguments, idempotencyKey: String?,
        requester: String, role: Role, wait: Bool
    ) throws -> (TransactionRecord, Outcome) {
        if let key = idempotencyKey, let earlier = try journal.transaction(idempotencyKey: key) {
            return (earlier, .existing)
        }
        let call = try OperationCall.make(operation, arguments)
        let canonical = Self.canonical(arguments)
        if let running, running.record.operation == operation.rawValue, running.record.arguments == canonical {
            return (running.record, .existing)
        }
        let busy = running != nil || !queue.isEmpty
        if busy && !wait {
            throw AgentProblem(
                status: 409, slug: "busy", title: "Another transaction is running",
                detail: "\(running?.record.operation ?? "a transaction") \(running?.record.id ?? "") is running; cancel it or retry with wait=true",
                transaction: running?.record.id)
        }
        if busy && queue.count >= queueLength {
            throw AgentProblem(status: 429, slug: "queue-full", title: "Transaction queue is full", detail: "\(queue.count) transactions are queued")
        }
        var record = TransactionRecord(
            id: UUID().uuidString.lowercased(), operation: operation.rawValue, arguments: canonical, state: "queued",
            requester: requester, role: role.rawValue, idempotencyKey: idempotencyKey)
        record = try journal.insert(record)
        let channel = EventChannel(transactionID: record.id, journal: journal)
        channels[record.id] = channel
        let active = Active(record: record, call: call, token: CancellationToken(), channel: channel)
        logger.info("transaction queued", metadata: ["txn": "\(record.id)", "operation": "\(record.operation)", "requester": "\(requester)"])
        if busy {
            queue.append(active)
            return (record, .accepted)
        }
        start(active)
        return (running?.record ?? record, .accepted)
    }

    private func start(_ entry: Active) {
        var entry = entry
        entry.record.state = "running"
        entry.record.startedAt = Date()
        do { try journal.update(entry.record) } catch { logger.error("journal write failed: \(error)") }
        running = entry
        let record = entry.record
        onStatus("Running \(record.operation) \(record.id)")
        logger.info("transaction started", metadata: ["txn": "\(record.id)", "operation": "\(record.operation)"])
        let options = engineOptions
        let channel = entry.channel
        let token = entry.token
        let call = entry.call
        let onStatus = self.onStatus
        let progress = EventProgress(channel: channel) { phase in onStatus("\(record.operation) \(record.id): \(phase)") }
        let timeout = self.timeout
        let id = record.id
        Task.detached {
            var engineOptions = options
            engineOptions.progress = progress
            let engine = Engine(options: engineOptions)
            let result: Result<ChangeResult, any Error>
            do {
                result = .success(try await Engine.run({ token in try call(engine, token) }, token: token))
            } catch {
                result = .failure(error)
            }
            progress.finishTask()
            await self.finish(id, result)
        }
        running?.timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            self.timeOut(id)
        }
    }

    private func timeOut(_ id: String) {
        guard running?.record.id == id else { return }
        running?.cancelReason = "timed out after \(timeout)"
        running?.token.cancel()
    }

    private func finish(_ id: String, _ result: Result<ChangeResult, any Error>) {
        guard var entry = running, entry.record.id == id else { return }
        entry.record.finishedAt = Date()
        switch result {
        case .success(let change):
            entry.record.state = "succeeded"
            entry.record.changed = change.changed
            entry.record.summary = change.summary
            entry.record.resultChecksum = change.checksum
        case .failure(let error):
            let engineError = error as? EngineError
            if error is CancellationError || engineError?.kind == .cancelled || entry.token.isCancelled {
                entry.record.state = "cancelled"
                entry.record.error = entry.cancelReason ?? "cancelled"
            } else {
                entry.record.state = "failed"
                entry.record.error = engineError?.message ?? "\(error)"
            }
        }
        do { try journal.update(entry.record) } catch { logger.error("journal write failed: \(error)") }
        var finished: [String: any Sendable] = ["success": entry.record.state == "succeeded", "state": entry.record.state]
        if let error = entry.record.error { finished["error"] = error }
        if let changed = entry.record.changed { finished["changed"] = changed }
        entry.channel.emit("finished", finished)
        channels[id] = nil
        counts["\(entry.record.operation)|\(entry.record.state)", default: 0] += 1
        logger.info(
            "transaction \(entry.record.state)",
            metadata: ["txn": "\(id)", "operation": "\(entry.record.operation)", "error": "\(entry.record.error ?? "")"])
        entry.timer?.cancel()
        running = nil
        _ = try? journal.applyRetention(maxAge: retention.maxAgeDays * 86400, maxCount: retention.maxCount)
        if !queue.isEmpty {
            start(queue.removeFirst())
        } else {
            onStatus("Idle")
            for waiter in idleWaiters { waiter.resume() }
            idleWaiters.removeAll()
        }
    }

    /// Cancels a queued or running transaction. Only an admin may cancel someone else's.
    public func cancel(id: String, requester: String, role: Role) throws -> TransactionRecord {
        guard let record = try journal.transaction(id: id) else { throw AgentProblem.notFound("no transaction \(id)") }
        if record.requester != requester && role < .admin {
            throw AgentProblem.forbidden("only an admin may cancel another requester's transaction")
        }
        if let index = queue.firstIndex(where: { $0.record.id == id }) {
            var entry = queue.remove(at: index)
            entry.record.state = "cancelled"
            entry.record.finishedAt = Date()
            entry.record.error = "cancelled by \(requester) before it ran"
            try journal.update(entry.record)
            entry.channel.emit("finished", ["success": false, "state": "cancelled", "error": entry.record.error!])
            channels[id] = nil
            return entry.record
        }
        if running?.record.id == id {
            if running?.cancelReason == nil { running?.cancelReason = "cancelled by \(requester)" }
            running?.token.cancel()
            return running!.record
        }
        throw AgentProblem(status: 409, slug: "finished", title: "Transaction already finished", detail: "\(id) is \(record.state)", transaction: id)
    }

    /// The running transaction, if any.
    public var current: TransactionRecord? { running?.record }

    /// Queued transactions, oldest first.
    public var queued: [TransactionRecord] { queue.map(\.record) }

    /// Finished-transaction counts by "operation|state" since start.
    public var finishedCounts: [String: Int] { counts }

    /// Past then live events of a transaction (empty for an unknown id).
    public func events(id: String) throws -> AsyncStream<EventRecord>? {
        if let channel = channels[id] { return channel.subscribe() }
        guard try journal.transaction(id: id) != nil else { return nil }
        let past = try journal.events(transaction: id)
        return AsyncStream { continuation in
            for event in past { continuation.yield(event) }
            continuation.finish()
        }
    }

    /// Graceful stop: cancels queued work and the running transaction, waits until it is journaled.
    public func shutdown() async {
        for entry in queue {
            var record = entry.record
            record.state = "cancelled"
            record.finishedAt = Date()
            record.error = "the agent stopped before it ran"
            try? journal.update(record)
            entry.channel.emit("finished", ["success": false, "state": "cancelled", "error": record.error!])
        }
        queue.removeAll()
        guard running != nil else { return }
        running?.cancelReason = "the agent is stopping"
        running?.token.cancel()
        await withCheckedContinuation { idleWaiters.append($0) }
    }
}
