import Foundation
import Glibc
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// How the API learns who is asking.
public enum CallerResolution: Sendable {
    /// From the connection: the TLS client certificate's identity and its role, or the local
    /// socket's peer uid (what `apt-layerd` always uses).
    case connection
    /// One caller for every request: in-process tests reach the router without a transport
    /// (``Agent/buildApplication(configuration:logger:callers:)``); the role checks still apply.
    case fixed(Caller)
}

/// The agent assembled from its configuration: the shared host state, the mTLS API, the loopback
/// metrics listener, the local socket, and the services that run beside them. `apt-layerd` runs
/// it; tests send requests to ``api`` and ``metrics`` in process (HummingbirdTesting's router
/// framework) without binding anything.
public struct AgentApplication: Sendable {
    let core: AgentCore
    /// The mTLS API listener: per-peer limit, TLS, HTTP/1, ``MethodResponder`` over the router.
    let api: Application<MethodResponder>
    /// The loopback `GET /metrics` and `GET /v1/healthz` listener.
    let metrics: Application<RouterResponder<BasicRequestContext>>
    /// The local Unix socket for the CLI on this host; nil when `socket` is empty.
    let socket: Application<MethodResponder>?
    /// Everything that runs until graceful shutdown, in start order.
    let services: [any Service]

    /// Runs every service until SIGTERM or SIGINT, then lets the running transaction reach a safe
    /// point.
    public func run() async throws {
        if socket != nil {
            // The socket's directory, and no stale socket file from an agent that died.
            let path = core.configuration.socket
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            unlink(path)
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: core.logger))
        try await group.run()
    }
}

extension Agent {
    /// Opens the host state (``AgentCore``) and builds the listeners and services of
    /// ``AgentApplication``. Checks that every TCP address can be bound, so a taken port fails here
    /// with the configuration key that names it.
    public static func buildApplication(
        configuration config: AgentConfiguration, logger: Logger, callers resolution: CallerResolution = .connection
    ) async throws -> AgentApplication {
        let started = ContinuousClock.now
        let core = try await AgentCore(configuration: config, logger: logger, started: started)
        guard let apiAddress = AgentConfiguration.hostPort(config.listen),
            let metricsAddress = AgentConfiguration.hostPort(config.metricsListen)
        else {
            throw StartError(message: "invalid listen address")
        }
        if case .connection = resolution {
            try checkListenable([("listen", apiAddress.host, apiAddress.port), ("metrics-listen", metricsAddress.host, metricsAddress.port)])
        }
        let limits = [
            ConnectionStats(listener: "api", limit: config.maxConnections), ConnectionStats(listener: "socket", limit: config.maxConnections),
            ConnectionStats(listener: "metrics", limit: config.maxConnections),
        ]
        let peers = PeerConnections(limit: config.maxConnectionsPerPeer)
        let ready = ReadyGate(expected: config.socket.isEmpty ? 2 : 3, started: started, logger: logger)
        // One per listener set: a connection's caller, resolved by AuthMiddleware on its first
        // request, lets the status fast path answer later requests without the middleware chain.
        let callers = ConnectionCallers()
        let statusBytes = config.statusFastPath ? StatusBytes(handler: core.handler) : nil
        func responder() throws -> MethodResponder {
            MethodResponder(try apiRouter(core, callers: callers, resolution: resolution), fast: statusBytes, callers: callers)
        }

        let tls = try tlsConfiguration(config.tls)
        let apiHTTP1 = http1Configuration(config, firstHead: min(config.preAuthTimeoutSeconds, config.requestHeadTimeoutSeconds))
        let api = Application(
            responder: try responder(),
            server: HTTPServerBuilder { responder in
                PeerLimitedChannel(
                    base: try TLSChannel(HTTP1Channel(responder: responder, configuration: apiHTTP1), tlsConfiguration: tls), peers: peers)
            },
            configuration: .init(
                address: .hostname(apiAddress.host, port: apiAddress.port), serverName: "apt-layerd", backlog: Self.apiBacklog,
                availableConnectionsDelegate: CappedConnections(stats: limits[0])),
            onServerRunning: { channel in await ready.listening("API (mTLS)", channel) },
            logger: logger)
        let metrics = Application(
            responder: metricsRouter(core, connections: limits, peers: peers).buildResponder(),
            server: .http1(configuration: http1Configuration(config)),
            configuration: .init(
                address: .hostname(metricsAddress.host, port: metricsAddress.port), serverName: "apt-layerd-metrics",
                availableConnectionsDelegate: CappedConnections(stats: limits[2])),
            onServerRunning: { channel in await ready.listening("metrics", channel) },
            logger: logger)
        var socket: Application<MethodResponder>?
        if !config.socket.isEmpty {
            let path = config.socket
            socket = Application(
                responder: try responder(), server: .http1(configuration: http1Configuration(config)),
                configuration: .init(
                    address: .unixDomainSocket(path: path), serverName: "apt-layerd",
                    availableConnectionsDelegate: CappedConnections(stats: limits[1])),
                onServerRunning: { channel in
                    chmod(path, 0o600)
                    await ready.listening("local socket", channel)
                },
                logger: logger)
        }

        var services: [any Service] = [ManagerService(manager: core.manager), api, metrics]
        if config.trimMemory { services.append(MemoryTrimmer(connections: limits)) }
        if let driver = core.driver { services.append(DriverService(driver: driver)) }
        services.append(BootMarkerService(core: core, ready: ready))
        if let telemetry = core.telemetry { services.append(TelemetryService(telemetry: telemetry)) }
        if let socket { services.append(socket) }
        if let interval = Systemd.watchdogInterval { services.append(WatchdogService(interval: interval)) }
        return AgentApplication(core: core, api: api, metrics: metrics, socket: socket, services: services)
    }

    /// The API's router: problems → `Location` → who is asking (a caller without the role is
    /// refused before its body is read) → body limits → the generated handlers.
    static func apiRouter(_ core: AgentCore, callers: ConnectionCallers, resolution: CallerResolution) throws -> Router<AgentRequestContext> {
        let config = core.configuration
        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: ProblemMiddleware(logger: core.logger, faults: core.faults))
        router.add(middleware: LocationHeaderMiddleware())
        router.add(
            middleware: AuthMiddleware(
                roles: config.roles, identitySource: config.identitySource, logger: core.logger, callers: callers, resolution: resolution))
        router.add(middleware: BodyLimitMiddleware(maxBytes: config.maxBodyBytes, streamed: ["/v1/package-files": config.maxUploadBytes]))
        // Compact JSON (the runtime's default pretty-prints every response) with sorted keys: the
        // same document is the same bytes on every path (StatusBytes splices into that order).
        try core.handler.registerHandlers(
            on: router, configuration: .aptLayer)
        return router
    }

    /// The loopback listener's router: Prometheus text and a health answer.
    static func metricsRouter(_ core: AgentCore, connections: [ConnectionStats], peers: PeerConnections) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            let text = await Metrics.render(
                manager: core.manager, faults: core.faults, statusCache: core.statusCache, engineOptions: core.engineOptions,
                journalReset: core.journalReset, connections: connections, peers: peers, started: core.started, journal: core.journal,
                driver: core.driver, telemetry: core.telemetry)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/v1/healthz") { _, _ in "{\"status\":\"ok\"}" }
        return router
    }

    /// HTTP/1 with the idle timeout and the request-head timeout (`firstHead`: a new
    /// connection's shorter budget).
    static func http1Configuration(_ config: AgentConfiguration, firstHead: Double? = nil) -> HTTP1Channel.Configuration {
        let headTimeout = TimeAmount.milliseconds(Int64(config.requestHeadTimeoutSeconds * 1000))
        let firstTimeout = firstHead.map { TimeAmount.milliseconds(Int64($0 * 1000)) }
        return .init(
            additionalChannelHandlers: [RequestHeadTimeoutHandler(timeout: headTimeout, firstTimeout: firstTimeout)],
            idleTimeout: .milliseconds(Int64(config.idleTimeoutSeconds * 1000)))
    }
}
