import APTLayerDriver
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTelemetry
import APTLayerTransaction
import Foundation
import Synchronization

/// Counts the API's own faults (5xx answers), by problem type, for `/metrics`.
public final class FaultCounter: Sendable {
    private let counts = Mutex<[ProblemType: Int]>([:])
    /// Creates a counter at zero.
    public init() {}
    /// Counts one fault.
    func record(_ type: ProblemType) { counts.withLock { $0[type, default: 0] += 1 } }
    /// The counts so far.
    var snapshot: [ProblemType: Int] { counts.withLock { $0 } }
}

/// Prometheus text exposition of the agent's state, from cached state only: the manager's
/// counters, the fault counter, and the status cache (a scrape reads the sysroot only when a
/// deployment changed since the last read).
enum Metrics {
    static func render(
        manager: TransactionManager, faults: FaultCounter, statusCache: StatusCache, engineOptions: Engine.Options,
        journalReset: Journal.Reset?, connections: [ConnectionStats], peers: PeerConnections? = nil, started: ContinuousClock.Instant,
        journal: Journal,
        driver: UpdateDriver?, telemetry: Telemetry?
    ) async -> String {
        let counts = await manager.finishedCounts
        let running = await manager.current
        let queued = await manager.queued.count
        let uptime = ContinuousClock.now - started
        var lines = [
            "# HELP apt_layer_agent_info The agent's version.",
            "# TYPE apt_layer_agent_info gauge",
            "apt_layer_agent_info{version=\"\(escape(APIHandler.version))\"} 1",
            "# HELP apt_layer_agent_uptime_seconds Seconds since the agent started.",
            "# TYPE apt_layer_agent_uptime_seconds gauge",
            "apt_layer_agent_uptime_seconds \(uptime.components.seconds)",
            "# HELP apt_layer_transaction_running 1 while a transaction runs.",
            "# TYPE apt_layer_transaction_running gauge",
            "apt_layer_transaction_running{operation=\"\(running?.operation.kind.rawValue ?? "")\"} \(running == nil ? 0 : 1)",
            "# HELP apt_layer_transactions_queued Transactions waiting to run.",
            "# TYPE apt_layer_transactions_queued gauge",
            "apt_layer_transactions_queued \(queued)",
            "# HELP apt_layer_transactions_total Finished transactions since start, by operation and final state.",
            "# TYPE apt_layer_transactions_total counter",
        ]
        for (key, value) in counts.sorted(by: { $0.key < $1.key }) {
            lines.append("apt_layer_transactions_total{operation=\"\(key.kind.rawValue)\",state=\"\(key.state.rawValue)\"} \(value)")
        }
        lines += [
            "# HELP apt_layer_api_errors_total API requests that failed through the agent's own fault (5xx), by problem type.",
            "# TYPE apt_layer_api_errors_total counter",
        ]
        for (type, value) in faults.snapshot.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            lines.append("apt_layer_api_errors_total{type=\"\(type.rawValue)\"} \(value)")
        }
        lines += [
            "# HELP apt_layer_connections_open Open connections, by listener.",
            "# TYPE apt_layer_connections_open gauge",
        ]
        lines += connections.map { "apt_layer_connections_open{listener=\"\($0.listener)\"} \($0.open)" }
        lines += [
            "# HELP apt_layer_connections_limit_reached_total Times a listener reached max-connections (further clients wait in the backlog).",
            "# TYPE apt_layer_connections_limit_reached_total counter",
        ]
        lines += connections.map { "apt_layer_connections_limit_reached_total{listener=\"\($0.listener)\"} \($0.capped)" }
        if let peers {
            lines += [
                "# HELP apt_layer_connections_peer_refused_total API connections closed at accept because their address held max-connections-per-peer.",
                "# TYPE apt_layer_connections_peer_refused_total counter",
                "apt_layer_connections_peer_refused_total \(peers.refused)",
            ]
        }
        lines += [
            "# HELP apt_layer_journal_reset 1 when the journal was unreadable at start and was moved aside for a new one.",
            "# TYPE apt_layer_journal_reset gauge",
            "apt_layer_journal_reset \(journalReset == nil ? 0 : 1)",
        ]
        if let status = try? await statusCache.document(engineOptions) {
            lines += [
                "# HELP apt_layer_deployments Deployments in the sysroot.",
                "# TYPE apt_layer_deployments gauge",
                "apt_layer_deployments \(status.deployments.count)",
                "# HELP apt_layer_layered_packages Packages requested on the default deployment.",
                "# TYPE apt_layer_layered_packages gauge",
                "apt_layer_layered_packages \(status.deployments.first.map { $0.requestedPackages.count + $0.requestedLocalPackages.count } ?? 0)",
            ]
        }
        lines += await fleetLines(driver: driver, journal: journal, telemetry: telemetry)
        return lines.joined(separator: "\n") + "\n"
    }
}
