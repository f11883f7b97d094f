import Foundation
import Glibc
import Synchronization

/// SIGINT and SIGTERM for the whole process: blocked in every thread from the start and taken by
/// one `sigwait` thread, which calls the current handler (a verb's cancel) or, with none set, exits
/// as the signal would have. Blocked signals are queued even when the parent left them ignored (as a
/// shell does for `cmd &`); children get a clean signal mask from the engine's spawn attributes.
public enum SignalCancellation {
    private static let handler = Mutex<(@Sendable () -> Void)?>(nil)

    /// Call first thing in `main`, before any thread exists, so that every thread inherits the mask.
    public static func blockInThisThreadAndChildren() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let blocked = set
        let waiter = Thread {
            var signal: Int32 = 0
            var waitSet = blocked
            while sigwait(&waitSet, &signal) == 0 {
                if let handler = handler.withLock({ $0 }) {
                    handler()
                } else {
                    _exit(128 + signal)
                }
            }
        }
        waiter.start()
    }

    /// From now on, SIGINT/SIGTERM call `body` instead of ending the process.
    static func onSignal(_ body: @escaping @Sendable () -> Void) {
        handler.withLock { $0 = body }
    }
}
