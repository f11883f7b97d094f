import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import Synchronization

/// One transaction's event stream: every event is journaled, then handed to live subscribers.
/// A late subscriber reads the journal first and then receives only newer events.
///
/// Two locks, never nested the other way round: `emission` orders emitters and subscribers (an
/// event is journaled and yielded to every subscriber before the next one starts, and a new
/// subscriber's replay cannot miss or repeat one); `subscribers` only guards the table and is the
/// one lock a subscriber's `onTermination` takes. No continuation is ever yielded to or finished
/// while `subscribers` is held: `onTermination` runs inside `swift_task_cancel`, which holds the
/// cancelled task's status lock that `yield` needs, so yielding under the lock `onTermination`
/// takes deadlocks both threads (issue 26).
final class EventChannel: Sendable {
    private struct Subscribers {
        var number = 0
        var finished = false
        var table: [UUID: AsyncStream<EventRecord>.Continuation] = [:]
    }
    /// Held across one emission or one subscription (journal write or replay plus yields).
    private let emission = Mutex(())
    /// The subscriber table; held only to read or change it.
    private let subscribers = Mutex(Subscribers())
    let transactionID: String
    let journal: Journal

    init(transactionID: String, journal: Journal) {
        self.transactionID = transactionID
        self.journal = journal
    }

    /// The number of live subscribers (tests).
    var subscriberCount: Int { subscribers.withLock { $0.table.count } }

    /// Journals and broadcasts one event; `finished` closes the stream. Called from engine threads
    /// and the manager's own executor, never from the cooperative pool.
    func emit(_ event: TransactionEvent) {
        emission.withLock { _ in
            let taken = subscribers.withLock { s -> (EventRecord, [AsyncStream<EventRecord>.Continuation], closing: Bool)? in
                guard !s.finished else { return nil }
                s.number += 1
                let record = EventRecord(txnId: transactionID, number: s.number, event: event)
                let current = Array(s.table.values)
                guard event.kind == .finished else { return (record, current, false) }
                s.finished = true
                s.table.removeAll()
                return (record, current, true)
            }
            guard let (record, current, closing) = taken else { return }
            try? journal.append(record)
            // Outside the table's lock: a continuation whose consumer was just cancelled is safe
            // to yield to (the event is dropped), and finishing runs onTermination, which takes it.
            for continuation in current { continuation.yield(record) }
            if closing { for continuation in current { continuation.finish() } }
        }
    }

    /// Past events from the journal, then live ones, without gaps or repeats.
    func subscribe() -> AsyncStream<EventRecord> {
        let (stream, continuation) = AsyncStream<EventRecord>.makeStream(bufferingPolicy: .unbounded)
        let id = UUID()
        // Set before the stream is registered or returned, so no termination can miss it.
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.table.removeValue(forKey: id) } }
        emission.withLock { _ in
            // No event is emitted between the replay and the registration.
            for event in (try? journal.events(transaction: transactionID)) ?? [] { continuation.yield(event) }
            let open = subscribers.withLock { s -> Bool in
                guard !s.finished else { return false }
                s.table[id] = continuation
                return true
            }
            if !open { continuation.finish() }
        }
        return stream
    }
}

/// Turns engine progress into events: phases become task-begin/task-end, package counts percent.
final class EventProgress: ProgressSink {
    private let channel: EventChannel
    private let currentTask = Mutex<String?>(nil)
    private let onPhase: @Sendable (String) -> Void

    init(channel: EventChannel, onPhase: @escaping @Sendable (String) -> Void) {
        self.channel = channel
        self.onPhase = onPhase
    }

    func phase(_ name: String) {
        let previous = currentTask.withLock { task -> String? in
            defer { task = name }
            return task
        }
        if let previous { channel.emit(.taskEnd(task: previous)) }
        channel.emit(.taskBegin(task: name))
        onPhase(name)
    }

    func packages(done: Int, total: Int, item: String) { channel.emit(.progress(done: done, total: total, item: item)) }

    func message(_ text: String) { channel.emit(.message(text: text)) }

    /// Journals the commit about to be deployed before the engine writes the deployment; when the
    /// journal cannot take it (a full filesystem), the engine stops before deploying, so the
    /// journal never has to guess after a crash (issue 26).
    func willDeploy(_ checksum: String) throws {
        do { try channel.journal.recordIntendedResult(transaction: channel.transactionID, checksum: checksum) } catch {
            let reason = Journal.isDiskFull(error) ? "its filesystem is full" : "\(error)"
            throw EngineError(
                .system, "the journal cannot record the commit about to be deployed (\(reason)); nothing was changed", underlying: error)
        }
    }

    /// Ends the open task, if any.
    func finishTask() {
        if let task = currentTask.withLock({ t -> String? in
            defer { t = nil }; return t
        }) {
            channel.emit(.taskEnd(task: task))
        }
    }
}
