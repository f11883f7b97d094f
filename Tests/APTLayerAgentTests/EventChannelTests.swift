import APTLayerJournal
import APTLayerModel
import Foundation
import GRDB
import Synchronization
import TestSupport
import Testing

@testable import APTLayerTransaction

/// The event channel under subscribers that come and go while a transaction emits (issue 26,
/// finding 1: yielding under the lock that a cancelled subscriber's `onTermination` takes froze
/// the whole agent).
@Suite("event channel", .tags(.fast))
struct EventChannelTests {
    /// Emits `count` events from a plain thread, as the engine does; returns when it is done.
    final class Flag: Sendable {
        let value = Atomic(false)
    }

    private static func emitting(_ channel: EventChannel, count: Int) -> Flag {
        let done = Flag()
        Thread.detachNewThread {
            for i in 0..<count { channel.emit(.message(text: "event \(i)")) }
            channel.emit(.finished(state: .succeeded, error: nil, changed: true))
            done.value.store(true, ordering: .releasing)
        }
        return done
    }

    /// Whether `done` turns true within `seconds`.
    private static func finished(_ done: Flag, within seconds: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !done.value.load(ordering: .acquiring) {
            if ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    private static func channel() throws -> EventChannel {
        let journal = try Journal(writer: DatabaseQueue())
        var record = TransactionRecord(id: "t", operation: .rollback, requester: "op")
        try record.move(to: .running)
        _ = try journal.insert(record)
        return EventChannel(transactionID: "t", journal: journal)
    }

    /// 200 subscribers join while events are emitted and are cancelled after a few
    /// events, at random moments: the emitter finishes, nothing deadlocks, and every subscriber
    /// that stays to the end saw every event once, in order.
    @Test(.timeLimit(.minutes(3))) func subscribersCancelledDuringEmissionsNeitherBlockNorLoseEvents() async throws {
        let channel = try Self.channel()
        let total = 5_000
        let done = Self.emitting(channel, count: total)
        let complete = await withTaskGroup(of: [Int]?.self) { group in
            for i in 0..<200 {
                let stream = channel.subscribe()
                let keep = i % 10 == 0
                let task = Task<[Int]?, Never> {
                    var seen: [Int] = []
                    for await event in stream {
                        seen.append(event.number)
                        if !keep && seen.count > Int.random(in: 1...40) { await Task.yield() }
                    }
                    return keep ? seen : nil
                }
                if !keep {
                    group.addTask {
                        try? await Task.sleep(for: .microseconds(Int.random(in: 0...3000)))
                        task.cancel()
                        return await task.value
                    }
                } else {
                    group.addTask { await task.value }
                }
                if i % 10 == 0 { try? await Task.sleep(for: .milliseconds(1)) }
            }
            var complete: [[Int]] = []
            for await seen in group { if let seen { complete.append(seen) } }
            return complete
        }
        // The emitter finished (a deadlock would leave it blocked in yield, or a subscriber's
        // cancellation blocked on the lock).
        #expect(await Self.finished(done, within: 30))
        #expect(complete.count == 20)
        for seen in complete { #expect(seen == Array(1...(total + 1))) }
        #expect(channel.subscriberCount == 0)
    }

    /// A subscriber that arrives after the end replays the journal and finishes at once.
    @Test func lateSubscriberReplaysAndFinishes() async throws {
        let channel = try Self.channel()
        let done = Self.emitting(channel, count: 5)
        #expect(await Self.finished(done, within: 10))
        var numbers: [Int] = []
        for await event in channel.subscribe() { numbers.append(event.number) }
        #expect(numbers == [1, 2, 3, 4, 5, 6])
        #expect(channel.subscriberCount == 0)
    }
}
