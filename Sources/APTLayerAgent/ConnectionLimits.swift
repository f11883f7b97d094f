import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Per-listener connection counts for `/metrics`: how many are open and how often the cap was hit.
public final class ConnectionStats: Sendable {
    private let state = Mutex<(open: Int, capped: Int)>((0, 0))
    /// The listener's name in metric labels.
    public let listener: String
    /// The most connections the listener keeps open; more wait in the kernel's backlog.
    public let limit: Int

    /// Creates the counters of one listener.
    public init(listener: String, limit: Int) {
        self.listener = listener
        self.limit = limit
    }

    func opened() {
        state.withLock { s in
            s.open += 1; if s.open >= limit { s.capped += 1 }
        }
    }
    func closed() { state.withLock { $0.open -= 1 } }
    var open: Int { state.withLock { $0.open } }
    /// How many times a connection filled the last slot.
    var capped: Int { state.withLock { $0.capped } }
}

/// Stops accepting at the listener's limit (Hummingbird stops reading the listening socket, so
/// further clients wait in the backlog instead of taking file descriptors), and counts.
struct CappedConnections: AvailableConnectionsDelegate {
    let stats: ConnectionStats
    mutating func connectionOpened() { stats.opened() }
    mutating func connectionClosed() { stats.closed() }
    func isAcceptingNewConnections() -> Bool { stats.open < stats.limit }
}

/// Closes a connection whose request head has not fully arrived within `timeout`: from accept
/// (covering a TLS handshake that never completes or crawls) and again after each response
/// (a keep-alive connection that then sends its next head one byte at a time).
final class RequestHeadTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context) }
    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }
    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context) }
        context.write(data, promise: promise)
    }
}
