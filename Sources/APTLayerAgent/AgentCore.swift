import APTLayerDriver
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTelemetry
import APTLayerTransaction
import Foundation
import Glibc
import Logging

/// The host state every listener shares, opened in order: the state directory's lock → the
/// journal (moved aside when unreadable) → crash recovery → retention → after-boot fix-ups → the
/// transaction manager, the fleet driver and telemetry → the API handler.
///
/// Dropping the core releases the state directory's lock.
final class AgentCore: Sendable {
    let configuration: AgentConfiguration
    let logger: Logger
    let started: ContinuousClock.Instant
    let engineOptions: Engine.Options
    let journal: Journal
    /// Set when the journal was unreadable at start and a new one was begun.
    let journalReset: Journal.Reset?
    let manager: TransactionManager
    let statusCache: StatusCache
    let faults = FaultCounter()
    let driver: UpdateDriver?
    let telemetry: Telemetry?
    let handler: APIHandler
    /// What the boot counter said at start (after a fall-back was handled); nil when it could not be read.
    let bootCheck: Engine.BootCheck?
    private let lockFD: Int32

    /// Opens the state in the order above; a failure names what could not be opened.
    init(configuration config: AgentConfiguration, logger: Logger, started: ContinuousClock.Instant = .now) async throws {
        self.configuration = config
        self.logger = logger
        self.started = started
        lockFD = try Agent.lockStateDirectory(config.stateDirectory)
        do {
            (journal, journalReset) = try Self.openJournal(config, logger: logger)
            var engineOptions = Engine.Options(sysroot: config.sysroot, osname: config.os)
            engineOptions.bootTries = config.bootTries
            self.engineOptions = engineOptions
            try await Self.recover(journal: journal, engineOptions: engineOptions, config: config, logger: logger)
            bootCheck = await Self.checkBoot(engineOptions: engineOptions, logger: logger)
            if case .fellBack = bootCheck { try? journal.increment(.bootFallbacks) }
            manager = TransactionManager(
                journal: journal, engineOptions: engineOptions, timeout: .milliseconds(Int64(config.transactionTimeoutSeconds * 1000)),
                queueLength: config.queueLength, retention: (config.retention.maxAgeDays * 86400, config.retention.maxCount), logger: logger
            ) { Systemd.notify("STATUS=\($0)") }
            statusCache = StatusCache(sysroot: config.sysroot)
            if let fleet = config.fleet {
                do {
                    driver = try UpdateDriver(
                        configuration: fleet, journal: journal, transactions: manager, engineOptions: engineOptions, logger: logger,
                        userAgent: "apt-layerd/\(APIHandler.version)")
                } catch {
                    throw Agent.StartError(message: "fleet: \(error)")
                }
            } else {
                driver = nil
            }
            telemetry = try Agent.makeTelemetry(config, journal: journal, engineOptions: engineOptions, driver: driver, logger: logger)
            handler = APIHandler(
                manager: manager, journal: journal, engineOptions: engineOptions, statusCache: statusCache,
                allowRemoteHostPaths: config.allowRemoteHostPaths,
                uploadLimits: .init(maxFileBytes: config.maxUploadBytes, maxStoreBytes: config.maxUploadStoreBytes), journalReset: journalReset,
                started: started, driver: driver)
        } catch {
            close(lockFD)
            throw error
        }
    }

    deinit { close(lockFD) }

    /// The journal, or a new one when the old is unreadable; a directory in its place is refused
    /// for good (nothing a restart changes: issue 26's crash loop under `Restart=on-failure`).
    static func openJournal(_ config: AgentConfiguration, logger: Logger) throws -> (Journal, Journal.Reset?) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: config.journalPath, isDirectory: &isDirectory), isDirectory.boolValue {
            throw Agent.StartError(
                message: "cannot open journal \(config.journalPath): it is a directory; move it aside or set journal in the configuration",
                permanent: true)
        }
        let opened: (Journal, Journal.Reset?)
        do { opened = try Journal.openOrReset(config.journalPath) } catch {
            throw Agent.StartError(message: "cannot open journal \(config.journalPath): \(error)")
        }
        if let reset = opened.1 {
            logger.critical(
                "the journal was unreadable and was moved aside; a new journal was started",
                metadata: ["moved-to": "\(reset.movedTo)", "reason": "\(reset.reason)"])
        }
        return opened
    }

    /// Settles transactions a crash interrupted (the default deployment decides the fate of one
    /// that was deploying), applies retention, and runs the after-boot fix-ups (accounts that a
    /// staged deployment's package scripts created).
    static func recover(journal: Journal, engineOptions: Engine.Options, config: AgentConfiguration, logger: Logger) async throws {
        let interrupted = try journal.recover(defaultChecksum: { try? Engine(options: engineOptions).defaultChecksum() })
        if !interrupted.isEmpty {
            for record in interrupted {
                logger.warning(
                    "transaction interrupted by a crash", metadata: ["txn": "\(record.id)", "operation": "\(record.operation.kind.rawValue)"])
            }
            try await Engine.run { _ in try Engine(options: engineOptions).recoverAfterCrash() }
        }
        try journal.applyRetention(maxAge: config.retention.maxAgeDays * 86400, maxCount: config.retention.maxCount)
        do { try await Engine.run { _ in try Engine(options: engineOptions).afterBoot() } } catch {
            logger.error("after-boot fix-ups failed", metadata: ["error": "\(error)"])
        }
    }
}
