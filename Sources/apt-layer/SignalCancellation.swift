import APTLayerEngine
import Foundation
import Glibc

/// Turns SIGINT and SIGTERM into a callback (cancelling the running operation).
///
/// The signals are blocked in every thread and taken by a dedicated `sigwait` thread. Blocked
/// signals are queued even when the parent left them ignored (as a shell does for `cmd &`), and
/// children get a clean signal mask from the engine's spawn attributes.
final class SignalCancellation: Sendable {
    /// Calls `onSignal` for every SIGINT/SIGTERM from now on.
    init(onSignal: @escaping @Sendable () -> Void) {
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
                onSignal()
            }
        }
        waiter.start()
    }

    /// Cancels `token` on SIGINT/SIGTERM.
    convenience init(token: CancellationToken) {
        self.init { token.cancel() }
    }
}
