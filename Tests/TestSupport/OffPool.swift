import Foundation
import Synchronization
import Testing

/// Runs every job it is given on a thread of its own, so a job that blocks (a fixture script, an
/// apt run, a synchronous engine call, `Shell`) holds only that thread and never one of the
/// cooperative pool's (two on two cores), which the agent tests' awaits and NIO's hand-offs need.
public final class BlockingWorkExecutor: TaskExecutor {
    /// The executor `.offPool` suites run on.
    public static let shared = BlockingWorkExecutor()

    /// Threads started so far (a test checks that work really ran here).
    public var threadsStarted: Int { started.load(ordering: .relaxed) }
    private let started = Atomic<Int>(0)

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        started.add(1, ordering: .relaxed)
        // A thread per job: a job runs until its task suspends or ends, and a blocked job must
        // not delay another; thread start-up (tens of microseconds) is nothing next to the work.
        let thread = Thread { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
        thread.name = "apt-layer.tests.off-pool"
        thread.start()
    }
}

/// Admits at most `width` test cases at a time, first come first served: with every test body off
/// the pool, nothing else bounds how many run at once (Swift Testing starts them all).
actor TestCaseGate {
    private let width: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(width: Int) { self.width = width }

    func enter() async {
        if running < width {
            running += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        if waiting.isEmpty { running -= 1 } else { waiting.removeFirst().resume() }
    }
}

/// `.offPool`: the suite's test cases run on ``BlockingWorkExecutor`` (and so do the child tasks
/// they start), at most ``width`` at once across every `.offPool` suite of the process.
public struct OffPoolTrait: SuiteTrait, TestTrait, TestScoping {
    /// Test cases running at once: enough that agents waiting on their subprocesses overlap with
    /// engine work, few enough that two cores are not buried under a hundred apt runs.
    public static let width = max(4, ProcessInfo.processInfo.activeProcessorCount * 2)
    static let gate = TestCaseGate(width: width)

    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? { testCase == nil ? nil : self }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        await Self.gate.enter()
        do {
            try await withTaskExecutorPreference(BlockingWorkExecutor.shared) { try await function() }
        } catch {
            await Self.gate.leave()
            throw error
        }
        await Self.gate.leave()
    }
}

extension Trait where Self == OffPoolTrait {
    /// Runs each test case of the suite off the cooperative pool (``BlockingWorkExecutor``): for
    /// suites whose tests block (mounts, apt, engine calls, fixture scripts, agents' subprocesses).
    public static var offPool: Self { OffPoolTrait() }
}
