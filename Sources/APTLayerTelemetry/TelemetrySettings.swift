import APTLayerFleet
import Foundation

/// What applies now: the agent's configuration, then the policy's `telemetry` section, then the
/// defaults. Either off switch wins.
public struct TelemetrySettings: Sendable, Equatable {
    /// Where reports go; nil when reports are off or no collector is named anywhere.
    public var reportURL: String?
    /// Seconds between reports when nothing changes.
    public var heartbeat: Int
    /// Where countme requests go; empty when countme is off.
    public var countmeEndpoints: [String]

    /// The default heartbeat: 6 hours.
    public static let defaultHeartbeat = 6 * 3600

    public init(configuration: TelemetryConfiguration, policyURL: String?, policy: FleetPolicy.Telemetry?) {
        reportURL = configuration.report ? (configuration.reportURL ?? policy?.report) : nil
        heartbeat = configuration.heartbeat?.seconds ?? policy?.heartbeat?.seconds ?? Self.defaultHeartbeat
        let countmeOn = configuration.countme && (policy?.countme ?? true)
        countmeEndpoints = countmeOn ? (configuration.countmeEndpoints ?? [policyURL].compactMap { $0 }) : []
    }
}
