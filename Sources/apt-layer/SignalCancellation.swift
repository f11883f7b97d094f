import APTLayerEngine
import Dispatch
import Glibc

/// Turns SIGINT and SIGTERM into cancellation of the running operation.
final class SignalCancellation {
    private var sources: [any DispatchSourceSignal] = []

    init(token: CancellationToken) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { token.cancel() }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        sources.forEach { $0.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
