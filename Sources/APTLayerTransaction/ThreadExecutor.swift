import Foundation
import Synchronization

/// A serial executor on one dedicated thread. The transaction manager runs on it, so its
/// synchronous journal writes (SQLite with `synchronous=FULL`) never block Swift's cooperative pool.
final class ThreadExecutor: SerialExecutor, Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    private let wake = DispatchSemaphore(value: 0)

    init(name: String) {
        // The thread keeps the executor alive: managers live as long as their process.
        let thread = Thread { self.loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            wake.wait()
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.runSynchronously(on: asUnownedSerialExecutor())
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        wake.signal()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
