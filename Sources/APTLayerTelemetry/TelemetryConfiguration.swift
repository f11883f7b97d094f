import APTLayerFleet
import APTLayerTLS
import Foundation

/// The agent's `telemetry:` configuration: the two off switches and where reports go. Every key is
/// documented in `docs/telemetry.md` and `deploy/agent/agent.yaml`.
public struct TelemetryConfiguration: Codable, Sendable, Equatable {
    /// Anonymous weekly counting (countme). Also off when the policy says `telemetry.countme: false`.
    public var countme = true
    /// Where the count is sent (default: the fleet's policy URL).
    public var countmeEndpoints: [String]?
    /// The first count attempt after the agent starts (rpm-ostree: 5 minutes after boot).
    public var countmeDelay = PolicyDuration(seconds: 300)
    /// Status reports to an OpenTelemetry collector.
    public var report = true
    /// The collector's OTLP/HTTP logs URL (`https://collector:4318/v1/logs`); default: the
    /// policy's `telemetry.report`.
    public var reportURL: String?
    /// A report is written at least this often even when nothing changed (default: the policy's
    /// `telemetry.heartbeat`, else 6 h).
    public var heartbeat: PolicyDuration?
    /// Reports per request.
    public var batchSize = 100
    /// Reports the outbox keeps while the collector is away; the oldest are dropped (and counted)
    /// beyond it.
    public var maxOutboxReports = 10_000
    /// Longest wait between retries.
    public var maxBackoff = PolicyDuration(seconds: 300)
    /// CA bundle and client certificate for the collector (default: the fleet's).
    public var ca: String?
    public var certificate: String?
    public var key: String?
    /// Where the machine-id is read for the host id when no fleet is configured (it never leaves
    /// the host).
    public var machineIDFile = "/etc/machine-id"

    public init() {}

    /// ``ca``, ``certificate`` and ``key`` as one set.
    public var tlsFiles: ClientTLSFiles { ClientTLSFiles(ca: ca, certificate: certificate, key: key) }

    enum CodingKeys: String, CodingKey {
        case countme, report, heartbeat, ca, certificate, key
        case countmeEndpoints = "countme-endpoints"
        case countmeDelay = "countme-delay"
        case reportURL = "report-url"
        case batchSize = "batch-size"
        case maxOutboxReports = "max-outbox-reports"
        case maxBackoff = "max-backoff"
        case machineIDFile = "machine-id-file"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TelemetryConfiguration()
        countme = try c.decodeIfPresent(Bool.self, forKey: .countme) ?? d.countme
        countmeEndpoints = try c.decodeIfPresent([String].self, forKey: .countmeEndpoints)
        countmeDelay = try c.decodeIfPresent(PolicyDuration.self, forKey: .countmeDelay) ?? d.countmeDelay
        report = try c.decodeIfPresent(Bool.self, forKey: .report) ?? d.report
        reportURL = try c.decodeIfPresent(String.self, forKey: .reportURL)
        heartbeat = try c.decodeIfPresent(PolicyDuration.self, forKey: .heartbeat)
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        maxOutboxReports = try c.decodeIfPresent(Int.self, forKey: .maxOutboxReports) ?? d.maxOutboxReports
        maxBackoff = try c.decodeIfPresent(PolicyDuration.self, forKey: .maxBackoff) ?? d.maxBackoff
        ca = try c.decodeIfPresent(String.self, forKey: .ca)
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        machineIDFile = try c.decodeIfPresent(String.self, forKey: .machineIDFile) ?? d.machineIDFile
    }

    /// Checks what decoding cannot; the message names the key.
    public func validate() throws(TelemetryError) {
        for url in [reportURL].compactMap({ $0 }) + (countmeEndpoints ?? []) {
            guard let parsed = URL(string: url), ["https", "http"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw TelemetryError("telemetry: \(url.debugDescription) is not an http(s) URL")
            }
        }
        if batchSize < 1 { throw TelemetryError("telemetry.batch-size must be at least 1") }
        if maxOutboxReports < 1 { throw TelemetryError("telemetry.max-outbox-reports must be at least 1") }
        if let heartbeat, heartbeat.seconds < 1 { throw TelemetryError("telemetry.heartbeat must be at least 1s") }
        if maxBackoff.seconds < 1 { throw TelemetryError("telemetry.max-backoff must be at least 1s") }
        if (certificate == nil) != (key == nil) { throw TelemetryError("telemetry.certificate and telemetry.key go together") }
    }
}

/// A telemetry failure with a one-line reason.
public struct TelemetryError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
