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

/// First in the pipeline, before TLS: a connection from a peer already at its limit is closed
/// as soon as it is active, before any handshake work (issue 26: one unauthenticated source
/// holding 1,100 connections locked authorised clients out).
final class PeerLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let peers: PeerConnections
    private var peer: String?

    init(peers: PeerConnections) { self.peers = peers }

    func channelActive(context: ChannelHandlerContext) {
        guard let address = context.channel.remoteAddress?.ipAddress else { return context.fireChannelActive() }
        guard peers.acquire(address) else {
            context.close(promise: nil)
            return
        }
        peer = address
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let peer { peers.release(peer) }
        peer = nil
        context.fireChannelInactive()
    }
}

/// A child channel whose pipeline starts with a ``PeerLimitHandler``.
struct PeerLimitedChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let peers: PeerConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(PeerLimitHandler(peers: peers))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async { await base.handle(value: value, logger: logger) }
}
