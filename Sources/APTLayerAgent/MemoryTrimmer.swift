import Glibc
import ServiceLifecycle

/// glibc's `malloc_trim` (malloc.h, which the Glibc module does not export).
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32

/// Gives memory back after a burst of connections. Per-connection state (TLS buffers, NIO
/// channels, request bodies, SSE streams) is freed when clients leave, but glibc keeps the freed
/// pages in its per-thread arenas, so the agent's anonymous memory stayed near its peak long after
/// the clients had gone. Every `interval`, when the listeners hold fewer connections than at the
/// last look (a burst ended), `malloc_trim(0)` returns free pages of every arena to the kernel.
struct MemoryTrimmer: Service {
    let connections: [ConnectionStats]
    var interval: Duration = .seconds(5)

    func run() async throws {
        var previous = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Graceful shutdown ends the wait at once (a plain sleep held SIGTERM up for 5 s).
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            let open = connections.reduce(0) { $0 + $1.open }
            if open < previous { _ = mallocTrim(0) }
            previous = open
        }
    }
}
