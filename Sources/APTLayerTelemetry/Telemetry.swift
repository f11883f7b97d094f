import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTLS
import AsyncHTTPClient
import Foundation
import Logging
import NIOSSL

/// The agent's reporting: the status reporter on the journal, the outbox sender and countme.
public final class Telemetry: Sendable {
    public let reporter: StatusReporter
    let journal: Journal
    let sender: OutboxSender
    let countme: CountmeReporter
    let reportClient: HTTPClient
    let countmeClient: HTTPClient
    let configuration: TelemetryConfiguration
    /// Where the countme cookie lives.
    public let cookiePath: String

    /// Sets reporting up and installs the reporter on `journal`; `tls` are the fleet's files, which
    /// the telemetry section's own override. Throws a one-line error for unusable TLS files.
    public init(
        configuration: TelemetryConfiguration, identity: StatusReporter.Identity, journal: Journal, engineOptions: Engine.Options,
        policyURL: String?, tls: ClientTLSFiles, stateDirectory: String, logger: Logger
    ) throws(TelemetryError) {
        let wakeup = Wakeup()
        self.configuration = configuration
        self.journal = journal
        reporter = StatusReporter(
            identity: identity, engineOptions: engineOptions, configuration: configuration, policyURL: policyURL,
            written: { wakeup.signal() })
        // The collector gets the client certificate; countme requests never do (no identifier).
        let reportTLS: TLSConfiguration
        let countmeTLS: TLSConfiguration
        do {
            let files = tls.overlaid(by: configuration.tlsFiles)
            reportTLS = try files.configuration()
            countmeTLS = try files.configuration(identity: false)
        } catch {
            throw TelemetryError("telemetry TLS files: \(error)")
        }
        var reportHTTP = HTTPClient.Configuration(tlsConfiguration: reportTLS, timeout: .init(connect: .seconds(5), read: .seconds(30)))
        reportHTTP.redirectConfiguration = .disallow
        reportClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: reportHTTP)
        // A 3xx counts (rpm-ostree): redirects are not followed.
        var countmeHTTP = HTTPClient.Configuration(tlsConfiguration: countmeTLS, timeout: .init(connect: .seconds(10), read: .seconds(60)))
        countmeHTTP.redirectConfiguration = .disallow
        countmeClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: countmeHTTP)
        cookiePath = "\(stateDirectory)/countme.json"
        sender = OutboxSender(
            journal: journal, reporter: reporter, client: reportClient, configuration: configuration, hostID: identity.hostID,
            version: identity.agentVersion, logger: logger, wakeup: wakeup)
        countme = CountmeReporter(
            journal: journal, reporter: reporter, client: countmeClient, cookiePath: cookiePath, engineOptions: engineOptions,
            delay: configuration.countmeDelay.seconds, logger: logger)
        journal.observe(reporter)
    }

    /// Reports the deployments as they are at start (a reboot or a local run changed them), then
    /// sends until the task is cancelled.
    public func run() async {
        try? await journal.off { try $0.report(.deployments) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.sender.run() }
            group.addTask { await self.sender.heartbeats() }
            group.addTask { await self.countme.run() }
        }
        journal.observe(nil)
        try? await reportClient.shutdown()
        try? await countmeClient.shutdown()
    }

    /// When this host was last counted (nil: never).
    public var countmeLastSent: Date? {
        CountmeCookie.load(cookiePath).map { Date(timeIntervalSince1970: TimeInterval($0.window)) }
    }
}
