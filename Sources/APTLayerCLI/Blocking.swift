import Foundation
import Synchronization

/// Runs async work from a synchronous verb and waits for it. The verbs stay synchronous so that the
/// process's signal mask is set before any thread starts (see ``SignalCancellation``); the main
/// thread only waits here, it is not part of the cooperative pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        let result: Result<T, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        box.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return try box.withLock { $0! }.get()
}
