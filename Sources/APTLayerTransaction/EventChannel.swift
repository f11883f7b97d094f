import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import Synchronization

/// One transaction's event stream: every event is journaled, then handed to live subscribers.
/// A late subscriber reads the journal first and then receives only newer events.
final class EventChannel: Sendable {
    private struct State {
        var number = 0
        var finished = false
        var subscribers: [UUID: AsyncStream<EventRecord>.Continuation] = [:]
    }
    private let state = Mutex(State())
    let transactionID: String
    let journal: Journal

    init(transactionID: String, journal: Journal) {
        self.transactionID = transactionID
        self.journal = journal
    }

    /// Journals and broadcasts one event; `finished` closes the stream. Called from engine threads
    /// and the manager's own executor, never from the cooperative pool.
    func emit(_ event: TransactionEvent) {
        let closing = state.withLock { s -> [AsyncStream<EventRecord>.Continuation] in
            guard !s.finished else { return [] }
            s.number += 1
            let record = EventRecord(txnId: transactionID, number: s.number, event: event)
            try? journal.append(record)
            for continuation in s.subscribers.values { continuation.yield(record) }
            guard event.kind == .finished else { return [] }
            s.finished = true
            defer { s.subscribers.removeAll() }
            return Array(s.subscribers.values)
        }
        // Outside the lock: finishing runs onTermination, which takes the lock.
        for continuation in closing { continuation.finish() }
    }

    /// Past events from the journal, then live ones, without gaps or repeats.
    func subscribe() -> AsyncStream<EventRecord> {
        let (stream, continuation) = AsyncStream<EventRecord>.makeStream(bufferingPolicy: .unbounded)
        let id = UUID()
        state.withLock { s in
            // Under the lock no event can be emitted between the replay and the registration.
            for event in (try? journal.events(transaction: transactionID)) ?? [] { continuation.yield(event) }
            if s.finished {
                continuation.finish()
            } else {
                s.subscribers[id] = continuation
            }
        }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) } }
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

    /// Journals the commit about to be deployed before the engine writes the deployment.
    func willDeploy(_ checksum: String) {
        do { try channel.journal.recordIntendedResult(transaction: channel.transactionID, checksum: checksum) } catch {
            channel.emit(.message(text: "warning: could not journal the commit about to be deployed: \(error)"))
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
