import APTLayerAPI
import APTLayerDriver
import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import APTLayerTLS
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
                tls: config.fleet?.tlsFiles ?? ClientTLSFiles(),
                stateDirectory: config.stateDirectory, logger: logger)
        } catch {
            throw StartError(message: error.message)
        }
    }

    /// Runs until SIGTERM/SIGINT: ``buildApplication(configuration:logger:callers:)``, then its
    /// services.
    public static func run(configuration config: AgentConfiguration, logger: Logger) async throws {
        try await buildApplication(configuration: config, logger: logger).run()
    }
}

/// Sends READY=1 once every listener is bound.
actor ReadyGate {
    let expected: Int
    let started: ContinuousClock.Instant
    let logger: Logger
    var count = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var isReady = false

    init(expected: Int, started: ContinuousClock.Instant, logger: Logger) {
        self.expected = expected
        self.started = started
        self.logger = logger
    }

    /// Returns once READY=1 was sent.
    func waitUntilReady() async {
        if isReady { return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func listening(_ name: String, _ channel: any Channel) {
        logger.info("\(name) listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        count += 1
        guard count == expected else { return }
        let elapsed = ContinuousClock.now - started
        Systemd.notify("READY=1\nSTATUS=Idle")
        isReady = true
        for continuation in waiting { continuation.resume() }
        waiting = []
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
