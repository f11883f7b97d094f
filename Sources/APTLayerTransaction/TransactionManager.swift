import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import Glibc
import Logging
import Synchronization

/// The one transaction path: runs one mutating ``HostOperation`` at a time, journals every state
/// change before answering, keeps a bounded FIFO queue for `wait`, joins identical requests,
/// honours idempotency keys, and enforces a timeout. The agent runs one for its API; the CLI runs
/// one in-process when no agent is used, on the same journal.
///
/// The actor runs on its own thread (``ThreadExecutor``): its journal writes block that thread,
/// never the cooperative pool.
public actor TransactionManager {
    /// How a submission was taken.
    public enum Outcome: Sendable {
        /// Started now or queued (202).
        case accepted
        /// Joined the identical running transaction, or replayed an idempotency key (200).
        case existing
    }

    /// A finished-transaction counter's labels.
    public struct FinishedKey: Hashable, Sendable, Comparable {
        public var kind: HostOperation.Kind
        public var state: TransactionState
        public static func < (a: Self, b: Self) -> Bool { (a.kind.rawValue, a.state.rawValue) < (b.kind.rawValue, b.state.rawValue) }
    }

    struct Active {
        var record: TransactionRecord
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
    let retention: (maxAge: TimeInterval, maxCount: Int)?
    let logger: Logger
    let onStatus: @Sendable (String) -> Void
    private let executor = ThreadExecutor(name: "apt-layer.transactions")
    private var running: Active? {
        didSet {
            let record = running?.record
            snapshot.withLock { $0 = record }
        }
    }
    /// The running transaction as of its last change, readable without a hop onto the actor (the
    /// status fast path reads it on every request).
    private nonisolated let snapshot = Mutex<TransactionRecord?>(nil)
    private var queue: [Active] = []
    private var channels: [String: EventChannel] = [:]
    private var counts: [FinishedKey: Int] = [:]
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    /// Finished records the journal could not take (its filesystem was full), by id: written
    /// again every ``journalRetry`` until they land, and answered from here meanwhile, so the
    /// journal catches up with what happened instead of keeping `running` (issue 26).
    private var unjournaled: [String: TransactionRecord] = [:] {
        didSet {
            let pending = unjournaled
            unjournaledSnapshot.withLock { $0 = pending }
        }
    }
    private nonisolated let unjournaledSnapshot = Mutex<[String: TransactionRecord]>([:])
    private var journalRetryTask: Task<Void, Never>?
    /// How often finished records the journal could not take are written again.
    static let journalRetry: Duration = .seconds(2)
    private var finishWaiters: [String: [CheckedContinuation<TransactionRecord, Never>]] = [:]

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Creates a manager.
    /// - Parameters:
    ///   - retention: finished transactions older than `maxAge` seconds, and all but the newest
    ///     `maxCount`, are deleted after each transaction; nil keeps everything (a local CLI run:
    ///     the journal's retention is the agent's configuration, which the CLI does not read).
    ///   - onStatus: receives one line whenever the running transaction changes (systemd `STATUS=`).
    public init(
        journal: Journal, engineOptions: Engine.Options, timeout: Duration, queueLength: Int,
        retention: (maxAge: TimeInterval, maxCount: Int)?, logger: Logger, onStatus: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.journal = journal
        self.engineOptions = engineOptions
        self.timeout = timeout
        self.queueLength = queueLength
        self.retention = retention
        self.logger = logger
        self.onStatus = onStatus
    }

    /// Starts, queues or joins a transaction.
    public func submit(
        _ operation: HostOperation, idempotencyKey: String? = nil, requester: String, role: String?, wait: Bool
    ) throws(TransactionError) -> (TransactionRecord, Outcome) {
        do {
            if let key = idempotencyKey, let earlier = try journal.transaction(idempotencyKey: key, requester: requester) {
                guard earlier.operation == operation else { throw TransactionError.idempotencyKeyReused(key: key, transaction: earlier.id) }
                return (earlier, .existing)
            }
        } catch let error as TransactionError { throw error } catch { throw .journal(transaction: nil, cause: error) }
        if let running, running.record.operation == operation {
            return (running.record, .existing)
        }
        let busy = running != nil || !queue.isEmpty
        if busy && !wait, let running {
            throw .busy(running: running.record.id, kind: running.record.operation.kind)
        }
        if busy && queue.count >= queueLength { throw .queueFull(queued: queue.count) }
        var record = TransactionRecord(
            id: UUID().uuidString.lowercased(), operation: operation, requester: requester, role: role, idempotencyKey: idempotencyKey,
            pid: getpid(), bootID: Journal.bootID)
        do { record = try journal.insert(record) } catch { throw .journal(transaction: record.id, cause: error) }
        let channel = EventChannel(transactionID: record.id, journal: journal)
        channels[record.id] = channel
        let active = Active(record: record, token: CancellationToken(), channel: channel)
        logger.info("transaction queued", metadata: ["txn": "\(record.id)", "operation": "\(operation.kind.rawValue)", "requester": "\(requester)"])
        if busy {
            queue.append(active)
            return (record, .accepted)
        }
        start(active)
        return (running?.record ?? record, .accepted)
    }

    /// Journals a state change; a failure is logged, and a finished record is kept and written
    /// again until it lands (``unjournaled``). Returns whether the journal took it.
    @discardableResult
    private func persist(_ record: TransactionRecord) -> Bool {
        do {
            try journal.update(record)
            unjournaled[record.id] = nil
            return true
        } catch {
            logger.error("journal write failed", metadata: ["txn": "\(record.id)", "state": "\(record.state.rawValue)", "error": "\(error)"])
            if record.state.isFinished {
                unjournaled[record.id] = record
                scheduleJournalRetry()
            }
            return false
        }
    }

    private func scheduleJournalRetry() {
        guard journalRetryTask == nil else { return }
        journalRetryTask = Task {
            try? await Task.sleep(for: Self.journalRetry)
            self.retryJournal()
        }
    }

    /// Writes the finished records the journal could not take, with their `finished` events;
    /// schedules another try for what still fails when `again`.
    private func retryJournal(again: Bool = true) {
        journalRetryTask?.cancel()
        journalRetryTask = nil
        for (id, record) in unjournaled.sorted(by: { $0.key < $1.key }) {
            do {
                try journal.finish(record)
                unjournaled[id] = nil
                logger.notice("journal caught up", metadata: ["txn": "\(id)", "state": "\(record.state.rawValue)"])
            } catch {
                break
            }
        }
        if again && !unjournaled.isEmpty { scheduleJournalRetry() }
    }

    /// A finished record the journal has not taken yet (it is answered from memory meanwhile).
    public nonisolated func unjournaledRecord(id: String) -> TransactionRecord? { unjournaledSnapshot.withLock { $0[id] } }

    /// Moves a record the manager holds: queued → running → a final state, or queued → cancelled,
    /// each one the state machine allows. An illegal move is a bug here, never the caller's: a debug
    /// build (every test) stops at it; a release build logs it as critical, with both states, and
    /// leaves the record where it was.
    private func move(_ record: inout TransactionRecord, to next: TransactionState) {
        do { try record.move(to: next) } catch {
            logger.critical(
                "illegal transaction state move",
                metadata: ["txn": "\(record.id)", "from": "\(error.from.rawValue)", "to": "\(error.to.rawValue)"])
            assertionFailure("\(record.id): \(error.from.rawValue) → \(error.to.rawValue)")
        }
    }

    private func start(_ entry: Active) {
        var entry = entry
        move(&entry.record, to: .running)
        let journaled = persist(entry.record)
        running = entry
        let record = entry.record
        guard journaled else {
            // A transaction the journal cannot follow does not run.
            let error = EngineError(.system, "the journal cannot record the transaction (its filesystem may be full); nothing was changed")
            finish(record.id, .failure(error))
            return
        }
        let kind = record.operation.kind.rawValue
        onStatus("Running \(kind) \(record.id)")
        logger.info("transaction started", metadata: ["txn": "\(record.id)", "operation": "\(kind)"])
        let options = engineOptions
        let token = entry.token
        let operation = record.operation
        let onStatus = self.onStatus
        let progress = EventProgress(channel: entry.channel) { phase in onStatus("\(kind) \(record.id): \(phase)") }
        let timeout = self.timeout
        let id = record.id
        Task.detached {
            var engineOptions = options
            engineOptions.progress = progress
            let engine = Engine(options: engineOptions)
            let result: Result<ChangeResult, any Error>
            do {
                result = .success(try await Engine.run({ token in try operation.run(on: engine, token: token) }, token: token))
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
        switch result {
        case .success(let change):
            move(&entry.record, to: .succeeded)
            entry.record.changed = change.changed
            entry.record.summary = change.summary
            entry.record.resultChecksum = change.checksum
            entry.record.diff = change.diff
        case .failure(let error):
            let engineError = error as? EngineError
            if error is CancellationError || engineError?.kind == .cancelled || entry.token.isCancelled {
                move(&entry.record, to: .cancelled)
                entry.record.error = entry.cancelReason ?? "cancelled"
            } else {
                move(&entry.record, to: .failed)
                entry.record.error = engineError?.message ?? "\(error)"
                entry.record.failure = engineError.flatMap(FailureKind.init) ?? .system
            }
        }
        persist(entry.record)
        entry.channel.emit(.finished(state: entry.record.state, error: entry.record.error, changed: entry.record.changed))
        channels[id] = nil
        resumeFinishWaiters(entry.record)
        counts[FinishedKey(kind: entry.record.operation.kind, state: entry.record.state), default: 0] += 1
        logger.info(
            "transaction \(entry.record.state.rawValue)",
            metadata: ["txn": "\(id)", "operation": "\(entry.record.operation.kind.rawValue)", "error": "\(entry.record.error ?? "")"])
        entry.timer?.cancel()
        running = nil
        if unjournaled[id] != nil {
            logger.error(
                "transaction \(entry.record.state.rawValue), but the journal could not record it yet; retrying every \(Self.journalRetry)",
                metadata: ["txn": "\(id)"])
        }
        if let retention { _ = try? journal.applyRetention(maxAge: retention.maxAge, maxCount: retention.maxCount) }
        if !queue.isEmpty {
            start(queue.removeFirst())
        } else {
            onStatus("Idle")
            for waiter in idleWaiters { waiter.resume() }
            idleWaiters.removeAll()
        }
    }

    /// Cancels a queued or running transaction. Only `mayCancelOthers` callers may cancel someone
    /// else's.
    public func cancel(id: String, requester: String, mayCancelOthers: Bool) throws(TransactionError) -> TransactionRecord {
        let found: TransactionRecord?
        do { found = try journal.transaction(id: id) } catch { throw .journal(transaction: id, cause: error) }
        guard let record = found else { throw .notFound(id: id) }
        if record.requester != requester && !mayCancelOthers {
            throw .forbidden("only an admin may cancel another requester's transaction")
        }
        if let index = queue.firstIndex(where: { $0.record.id == id }) {
            var entry = queue.remove(at: index)
            move(&entry.record, to: .cancelled)
            entry.record.error = "cancelled by \(requester) before it ran"
            do { try journal.update(entry.record) } catch { throw .journal(transaction: id, cause: error) }
            entry.channel.emit(.finished(state: .cancelled, error: entry.record.error, changed: nil))
            channels[id] = nil
            resumeFinishWaiters(entry.record)
            return entry.record
        }
        if let active = running, active.record.id == id {
            if active.cancelReason == nil { running?.cancelReason = "cancelled by \(requester)" }
            active.token.cancel()
            return active.record
        }
        throw .finished(id: id, state: record.state)
    }

    /// The running transaction, if any.
    public var current: TransactionRecord? { running?.record }

    /// ``current`` without awaiting the actor: the record as of its last change.
    public nonisolated var currentSnapshot: TransactionRecord? { snapshot.withLock { $0 } }

    /// Queued transactions, oldest first.
    public var queued: [TransactionRecord] { queue.map(\.record) }

    /// Finished-transaction counts by kind and final state since start.
    public var finishedCounts: [FinishedKey: Int] { counts }

    /// Past then live events of a transaction (nil for an unknown id).
    public func events(id: String) throws(TransactionError) -> AsyncStream<EventRecord>? {
        if let channel = channels[id] { return channel.subscribe() }
        do {
            guard try journal.transaction(id: id) != nil else { return nil }
            let past = try journal.events(transaction: id)
            return AsyncStream { continuation in
                for event in past { continuation.yield(event) }
                continuation.finish()
            }
        } catch { throw .journal(transaction: id, cause: error) }
    }

    /// Waits until transaction `id` has finished and returns its final record (nil for an unknown id).
    public func finished(id: String) async -> TransactionRecord? {
        if running?.record.id == id || queue.contains(where: { $0.record.id == id }) {
            return await withCheckedContinuation { finishWaiters[id, default: []].append($0) }
        }
        return unjournaled[id] ?? (try? journal.transaction(id: id))
    }

    private func resumeFinishWaiters(_ record: TransactionRecord) {
        for waiter in finishWaiters.removeValue(forKey: record.id) ?? [] { waiter.resume(returning: record) }
    }

    /// Waits until no transaction runs or is queued.
    public func idle() async {
        guard running != nil || !queue.isEmpty else { return }
        await withCheckedContinuation { idleWaiters.append($0) }
    }

    /// Graceful stop: cancels queued work and the running transaction, waits until it is journaled.
    public func shutdown(reason: String = "the agent is stopping") async {
        for entry in queue {
            var record = entry.record
            move(&record, to: .cancelled)
            record.error = "the agent stopped before it ran"
            persist(record)
            entry.channel.emit(.finished(state: .cancelled, error: record.error, changed: nil))
            resumeFinishWaiters(record)
        }
        queue.removeAll()
        if running != nil {
            running?.cancelReason = reason
            running?.token.cancel()
            await withCheckedContinuation { idleWaiters.append($0) }
        }
        // A last try for what the journal could not take; what still fails is left to recovery.
        retryJournal(again: false)
    }
}
