import APTLayerAPI
import APTLayerDriver
import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerTelemetry
import APTLayerTransaction
import Foundation
import Glibc
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import OpenAPIHummingbird
import ServiceLifecycle

/// Assembles and runs the agent: state directory lock → journal (+ crash recovery) → transaction
/// manager → mTLS API and loopback metrics listeners → systemd readiness and watchdog.
public enum Agent {
    /// A failure to start, with a one-line reason.
    public struct StartError: Error, CustomStringConvertible, Sendable {
        public let message: String
        /// A restart cannot fix it (the host must change first): the agent exits with
        /// ``configurationExitCode`` and the unit does not restart it in a loop.
        public var permanent = false
        public var description: String { message }
    }

    /// The exit status of a start that a restart cannot fix (sysexits' EX_CONFIG); the unit's
    /// `RestartPreventExitStatus=` names it.
    public static let configurationExitCode: Int32 = 78

    /// The TLS listener's accept queue (the kernel caps it at `net.core.somaxconn`, 4096 on
    /// Debian 12): under a one-source flood the queue of 256 stayed full and the kernel dropped
    /// authorised clients' SYNs, which came back only with TCP's 1 s retransmission. Flood
    /// connections in the queue cost one accept each (``PeerLimitedChannel``).
    static let apiBacklog = 4096

    /// Builds the TLS configuration: the server certificate, client certificates required and
    /// verified against the client CA, TLS 1.2 minimum.
    public static func tlsConfiguration(_ files: AgentConfiguration.TLSFiles) throws -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: files.key, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .file(files.clientCA)
            tls.minimumTLSVersion = .tlsv12
            return tls
        } catch {
            throw StartError(message: "TLS files (\(files.certificate), \(files.key), \(files.clientCA)): \(error)")
        }
    }

    /// Creates the state directory (0700) and takes its lock; a second agent on it fails here.
    static func lockStateDirectory(_ path: String) throws -> Int32 {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StartError(message: "cannot create state directory \(path): \(error)")
        }
        chmod(path, 0o700)
        let fd = open("\(path)/agent.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StartError(message: "cannot open \(path)/agent.lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, 31)
            close(fd)
            let holder = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw StartError(message: "another apt-layerd (pid \(holder)) is using state directory \(path)")
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return fd
    }

    /// Reporting, when anything is to be reported: a fleet (countme goes to its policy URL, reports
    /// to its policy's collector) or a collector or countme endpoint in the configuration.
    static func makeTelemetry(
        _ config: AgentConfiguration, journal: Journal, engineOptions: Engine.Options, driver: UpdateDriver?, logger: Logger
    ) throws -> Telemetry? {
        let t = config.telemetry
        guard config.fleet != nil || (t.report && t.reportURL != nil) || (t.countme && !(t.countmeEndpoints ?? []).isEmpty) else {
            return nil
        }
        let hostID: String
        if let driver {
            hostID = driver.hostID
        } else {
            do { hostID = try HostIdentity.hostID(machineIDFile: t.machineIDFile) } catch {
                throw StartError(message: "telemetry: \(error)")
            }
        }
        do {
            return try Telemetry(
                configuration: t,
                identity: .init(hostID: hostID, fleet: config.fleet?.name, stream: config.fleet?.stream, agentVersion: APIHandler.version),
                journal: journal, engineOptions: engineOptions, policyURL: config.fleet?.policyURL,
                tls: .init(ca: config.fleet?.ca, certificate: config.fleet?.certificate, key: config.fleet?.key),
                stateDirectory: config.stateDirectory, logger: logger)
        } catch {
            throw StartError(message: error.message)
        }
    }

    /// Runs until SIGTERM/SIGINT.
    public static func run(configuration config: AgentConfiguration, logger: Logger) async throws {
        let started = ContinuousClock.now
        let lockFD = try lockStateDirectory(config.stateDirectory)
        defer { close(lockFD) }

        let journal: Journal
        let journalReset: Journal.Reset?
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: config.journalPath, isDirectory: &isDirectory), isDirectory.boolValue {
            // Nothing a restart changes (issue 26: a crash loop under Restart=on-failure).
            throw StartError(
                message: "cannot open journal \(config.journalPath): it is a directory; move it aside or set journal in the configuration",
                permanent: true)
        }
        do { (journal, journalReset) = try Journal.openOrReset(config.journalPath) } catch {
            throw StartError(message: "cannot open journal \(config.journalPath): \(error)")
        }
        if let reset = journalReset {
            logger.critical(
                "the journal was unreadable and was moved aside; a new journal was started",
                metadata: ["moved-to": "\(reset.movedTo)", "reason": "\(reset.reason)"])
        }
        let engineOptions = Engine.Options(sysroot: config.sysroot, osname: config.os)
        // The default deployment decides the fate of a transaction that was deploying when it died
        // (read only when such a transaction exists).
        let interrupted = try journal.recover(defaultChecksum: { try? Engine(options: engineOptions).defaultChecksum() })
        if !interrupted.isEmpty {
            for record in interrupted {
                logger.warning(
                    "transaction interrupted by a crash", metadata: ["txn": "\(record.id)", "operation": "\(record.operation.kind.rawValue)"])
            }
            try await Engine.run { _ in try Engine(options: engineOptions).recoverAfterCrash() }
        }
        try journal.applyRetention(maxAge: config.retention.maxAgeDays * 86400, maxCount: config.retention.maxCount)
        // After a reboot into a staged deployment: accounts its package scripts created.
        do { try await Engine.run { _ in try Engine(options: engineOptions).afterBoot() } } catch {
            logger.error("after-boot fix-ups failed", metadata: ["error": "\(error)"])
        }

        let manager = TransactionManager(
            journal: journal, engineOptions: engineOptions, timeout: .milliseconds(Int64(config.transactionTimeoutSeconds * 1000)),
            queueLength: config.queueLength, retention: (config.retention.maxAgeDays * 86400, config.retention.maxCount), logger: logger
        ) { Systemd.notify("STATUS=\($0)") }
        let statusCache = StatusCache(sysroot: config.sysroot)
        let faults = FaultCounter()
        var driver: UpdateDriver?
        if let fleet = config.fleet {
            do {
                driver = try UpdateDriver(
                    configuration: fleet, journal: journal, transactions: manager, engineOptions: engineOptions, logger: logger,
                    userAgent: "apt-layerd/\(APIHandler.version)")
            } catch {
                throw StartError(message: "fleet: \(error)")
            }
        }
        let fleetDriver = driver
        let telemetry = try makeTelemetry(config, journal: journal, engineOptions: engineOptions, driver: fleetDriver, logger: logger)
        let handler = APIHandler(
            manager: manager, journal: journal, engineOptions: engineOptions, statusCache: statusCache,
            allowRemoteHostPaths: config.allowRemoteHostPaths,
            uploadLimits: .init(maxFileBytes: config.maxUploadBytes, maxStoreBytes: config.maxUploadStoreBytes), journalReset: journalReset,
            started: started, driver: driver)

        // One per listener: a connection's caller, resolved by AuthMiddleware on its first request,
        // lets the status fast path answer later requests on it without the middleware chain.
        let callers = ConnectionCallers()
        let statusBytes = config.statusFastPath ? StatusBytes(handler: handler) : nil
        func apiRouter() throws -> Router<AgentRequestContext> {
            let router = Router(context: AgentRequestContext.self)
            router.add(middleware: ProblemMiddleware(logger: logger, faults: faults))
            router.add(middleware: LocationHeaderMiddleware())
            // Who is asking first: a caller without the role is refused before its body is read.
            router.add(
                middleware: AuthMiddleware(roles: config.roles, identitySource: config.identitySource, logger: logger, callers: callers))
            router.add(middleware: BodyLimitMiddleware(maxBytes: config.maxBodyBytes, streamed: ["/v1/package-files": config.maxUploadBytes]))
            // Compact JSON (the runtime's default pretty-prints every response) with sorted keys: the
            // same document is the same bytes on every path (StatusBytes splices into that order).
            try handler.registerHandlers(
                on: router, configuration: .init(dateTranscoder: RFC3339Transcoder(), jsonEncodingOptions: [.sortedKeys]))
            return router
        }

        let limits = [
            ConnectionStats(listener: "api", limit: config.maxConnections), ConnectionStats(listener: "socket", limit: config.maxConnections),
            ConnectionStats(listener: "metrics", limit: config.maxConnections),
        ]
        /// HTTP/1 with the idle timeout and the request-head timeout (`firstHead`: a new
        /// connection's shorter budget).
        func http1Configuration(firstHead: Double? = nil) -> HTTP1Channel.Configuration {
            let headTimeout = TimeAmount.milliseconds(Int64(config.requestHeadTimeoutSeconds * 1000))
            let firstTimeout = firstHead.map { TimeAmount.milliseconds(Int64($0 * 1000)) }
            return .init(
                additionalChannelHandlers: [RequestHeadTimeoutHandler(timeout: headTimeout, firstTimeout: firstTimeout)],
                idleTimeout: .milliseconds(Int64(config.idleTimeoutSeconds * 1000)))
        }
        func http1() -> HTTPServerBuilder { .http1(configuration: http1Configuration()) }
        let peers = PeerConnections(limit: config.maxConnectionsPerPeer)
        let tls = try tlsConfiguration(config.tls)
        let preAuth = min(config.preAuthTimeoutSeconds, config.requestHeadTimeoutSeconds)
        /// The API listener: per-peer limit first, then TLS, then HTTP/1 with the pre-auth budget.
        let apiHTTP1 = http1Configuration(firstHead: preAuth)
        let apiServer = HTTPServerBuilder { responder in
            PeerLimitedChannel(base: try TLSChannel(HTTP1Channel(responder: responder, configuration: apiHTTP1), tlsConfiguration: tls), peers: peers)
        }

        let metricsRouter = Router()
        metricsRouter.get("/metrics") { _, _ -> Response in
            let text = await Metrics.render(
                manager: manager, faults: faults, statusCache: statusCache, engineOptions: engineOptions, journalReset: journalReset,
                connections: limits, peers: peers, started: started, journal: journal, driver: fleetDriver, telemetry: telemetry)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        metricsRouter.get("/v1/healthz") { _, _ in "{\"status\":\"ok\"}" }

        guard let api = AgentConfiguration.hostPort(config.listen), let metrics = AgentConfiguration.hostPort(config.metricsListen) else {
            throw StartError(message: "invalid listen address")
        }
        try checkListenable([("listen", api.host, api.port), ("metrics-listen", metrics.host, metrics.port)])
        let ready = ReadyGate(expected: config.socket.isEmpty ? 2 : 3, started: started, logger: logger)
        let apiApp = Application(
            responder: MethodResponder(try apiRouter(), fast: statusBytes, callers: callers),
            server: apiServer,
            configuration: .init(
                address: .hostname(api.host, port: api.port), serverName: "apt-layerd", backlog: Self.apiBacklog,
                availableConnectionsDelegate: CappedConnections(stats: limits[0])),
            onServerRunning: { channel in await ready.listening("API (mTLS)", channel) },
            logger: logger)
        let metricsApp = Application(
            router: metricsRouter, server: http1(),
            configuration: .init(
                address: .hostname(metrics.host, port: metrics.port), serverName: "apt-layerd-metrics",
                availableConnectionsDelegate: CappedConnections(stats: limits[2])),
            onServerRunning: { channel in await ready.listening("metrics", channel) },
            logger: logger)

        var services: [any Service] = [ManagerService(manager: manager), apiApp, metricsApp]
        if config.trimMemory { services.append(MemoryTrimmer(connections: limits)) }
        if let driver { services.append(DriverService(driver: driver)) }
        if let telemetry { services.append(TelemetryService(telemetry: telemetry)) }
        if !config.socket.isEmpty {
            let directory = (config.socket as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            unlink(config.socket)
            let socketPath = config.socket
            services.append(
                Application(
                    responder: MethodResponder(try apiRouter(), fast: statusBytes, callers: callers), server: http1(),
                    configuration: .init(
                        address: .unixDomainSocket(path: socketPath), serverName: "apt-layerd",
                        availableConnectionsDelegate: CappedConnections(stats: limits[1])),
                    onServerRunning: { channel in
                        chmod(socketPath, 0o600)
                        await ready.listening("local socket", channel)
                    },
                    logger: logger))
        }
        if let interval = Systemd.watchdogInterval { services.append(WatchdogService(interval: interval)) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Sends READY=1 once every listener is bound.
actor ReadyGate {
    let expected: Int
    let started: ContinuousClock.Instant
    let logger: Logger
    var count = 0

    init(expected: Int, started: ContinuousClock.Instant, logger: Logger) {
        self.expected = expected
        self.started = started
        self.logger = logger
    }

    func listening(_ name: String, _ channel: any Channel) {
        logger.info("\(name) listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        count += 1
        guard count == expected else { return }
        let elapsed = ContinuousClock.now - started
        Systemd.notify("READY=1\nSTATUS=Idle")
        logger.info(
            "ready", metadata: ["startup_ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)"])
    }
}

/// On graceful shutdown, lets the running transaction reach a safe point and be journaled.
struct ManagerService: Service {
    let manager: TransactionManager

    func run() async throws {
        try? await gracefulShutdown()
        Systemd.notify("STOPPING=1")
        await manager.shutdown()
    }
}

/// Runs the fleet update driver until graceful shutdown.
struct DriverService: Service {
    let driver: UpdateDriver

    func run() async throws {
        await cancelWhenGracefulShutdown { await driver.run() }
    }
}

/// Sends countme and the status reports until graceful shutdown.
struct TelemetryService: Service {
    let telemetry: Telemetry

    func run() async throws {
        await cancelWhenGracefulShutdown { await telemetry.run() }
    }
}

/// Pings the systemd watchdog at half the interval it asked for.
struct WatchdogService: Service {
    let interval: Duration

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            Systemd.notify("WATCHDOG=1")
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval / 2) }
        }
    }
}
