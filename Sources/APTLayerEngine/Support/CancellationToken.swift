import APTLayerModel
import Glibc
import OSTree
import Synchronization

/// Cancels one engine operation: libostree calls through a `GCancellable`, running subprocesses by
/// killing their process group, and the engine's own loops at their next safe point.
public final class CancellationToken: Sendable {
    private struct State {
        var cancelled = false
        var processGroups: Set<pid_t> = []
        var cancellable: Cancellable?
    }
    private let state = Mutex(State())

    /// Handed to libostree calls. Made on first use (a `GCancellable` loads libostree, which an
    /// operation that never calls it must not pay for) and already cancelled when the token is.
    public var cancellable: Cancellable {
        state.withLock { s in
            if let existing = s.cancellable { return existing }
            let made = Cancellable()
            if s.cancelled { made.cancel() }
            s.cancellable = made
            return made
        }
    }

    /// Creates an uncancelled token.
    public init() {}

    /// Cancels: stops running subprocess groups at once and makes the next safe point throw.
    public func cancel() {
        let (groups, cancellable) = state.withLock { s -> (Set<pid_t>, Cancellable?) in
            s.cancelled = true
            return (s.processGroups, s.cancellable)
        }
        cancellable?.cancel()
        for group in groups { kill(-group, SIGKILL) }
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// A safe point: throws `CancellationError` when cancelled.
    public func check() throws {
        if isCancelled { throw CancellationError() }
    }

    /// Records a running process group; kills it at once when already cancelled.
    func register(processGroup: pid_t) {
        let cancelled = state.withLock { s -> Bool in
            s.processGroups.insert(processGroup)
            return s.cancelled
        }
        if cancelled { kill(-processGroup, SIGKILL) }
    }

    func unregister(processGroup: pid_t) {
        _ = state.withLock { $0.processGroups.remove(processGroup) }
    }
}
