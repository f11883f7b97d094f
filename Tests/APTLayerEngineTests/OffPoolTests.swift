import Foundation
import Synchronization
import TestSupport
import Testing

/// The `.offPool` trait that the blocking suites carry (TestSupport/OffPool.swift).
@Suite("tests off the cooperative pool", .tags(.fast), .offPool)
struct OffPoolTests {
    /// More blocking children than the cooperative pool has threads all reach a barrier: on the
    /// pool (two threads on two cores) the first two would block it and the rest never start.
    @Test func blockingChildrenRunSideBySide() async throws {
        let parties = 2 * ProcessInfo.processInfo.activeProcessorCount + 2
        OffPoolTests.arrived.store(0, ordering: .relaxed)
        let before = BlockingWorkExecutor.shared.threadsStarted
        let reached = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<parties {
                group.addTask {
                    OffPoolTests.arrived.add(1, ordering: .relaxed)
                    // Blocks its thread (no await) until every party has arrived, for up to 20 s.
                    for _ in 0..<2000 {
                        if OffPoolTests.arrived.load(ordering: .relaxed) == parties { return true }
                        usleep(10_000)
                    }
                    return false
                }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(reached, "only \(OffPoolTests.arrived.load(ordering: .relaxed)) of \(parties) blocking children ran at once")
        #expect(BlockingWorkExecutor.shared.threadsStarted - before >= parties)
    }

    /// The gate admits at most `OffPoolTrait.width` test cases at once, and admits them all.
    @Test(arguments: 0..<12) func caseRunsWithinTheWidth(_ index: Int) async throws {
        let now = OffPoolTests.running.add(1, ordering: .relaxed).newValue
        defer { OffPoolTests.running.subtract(1, ordering: .relaxed) }
        #expect(now <= OffPoolTrait.width)
        try await Task.sleep(for: .milliseconds(50))
    }

    static let running = Atomic<Int>(0)
    static let arrived = Atomic<Int>(0)
}
