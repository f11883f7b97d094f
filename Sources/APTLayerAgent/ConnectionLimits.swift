import Hummingbird
import HummingbirdCore
import Logging
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
    /// The budget of a new connection, from accept to its first request head (TLS handshake
    /// included): shorter than ``timeout``, so unauthenticated connections are shed sooner.
    let firstTimeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount, firstTimeout: TimeAmount? = nil) {
        self.timeout = timeout
        self.firstTimeout = firstTimeout ?? timeout
    }

    private func arm(_ context: ChannelHandlerContext, first: Bool = false) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: first ? firstTimeout : timeout) { channel.close(promise: nil) }
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context, first: true) }
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

/// Open connections per peer address on one listener: one source cannot take every slot.
public final class PeerConnections: Sendable {
    private let state = Mutex<(open: [String: Int], refused: Int)>(([:], 0))
    /// The most connections one address keeps open; more are closed at once.
    public let limit: Int

    /// Creates an empty table.
    public init(limit: Int) { self.limit = limit }

    /// Counts a connection from `peer`; false (and counted as refused) when it is at its limit.
    func acquire(_ peer: String) -> Bool {
        state.withLock { s in
            guard s.open[peer, default: 0] < limit else {
                s.refused += 1
                return false
            }
            s.open[peer, default: 0] += 1
            return true
        }
    }

    func release(_ peer: String) {
        state.withLock { s in
            let left = s.open[peer, default: 1] - 1
            s.open[peer] = left > 0 ? left : nil
        }
    }

    /// Connections closed because their peer was at its limit, since start.
    var refused: Int { state.withLock { $0.refused } }
}

/// The API listener's child channel: a connection from a peer already at its limit is closed
/// before any handler is added to it (no TLS, no HTTP codec: what it costs is the accept), and
/// handed on as an already closed channel whose request stream ends at once (issue 26: one
/// unauthenticated source holding 1,100 connections locked authorised clients out). A failed
/// setup is no alternative: NIO reports it on the listening channel, which ends the server.
struct PeerLimitedChannel<Base: ServerChildChannel>: ServerChildChannel
where Base.Value == NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart> {
    typealias Value = Base.Value
    let base: Base
    let peers: PeerConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard let address = channel.remoteAddress?.ipAddress else { return base.setup(channel: channel, logger: logger) }
        guard peers.acquire(address) else {
            return channel.eventLoop.makeCompletedFuture {
                let closed = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(wrappingChannelSynchronously: channel)
                channel.close(promise: nil)
                return closed
            }
        }
        channel.closeFuture.whenComplete { _ in peers.release(address) }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async { await base.handle(value: value, logger: logger) }
}
