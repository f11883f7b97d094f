import APTLayerEngine
import Foundation

/// Prometheus text exposition of the agent's state.
enum Metrics {
    static func render(manager: TransactionManager, engineOptions: Engine.Options, started: ContinuousClock.Instant) async -> String {
        let counts = await manager.finishedCounts
        let running = await manager.current
        let queued = await manager.queued.count
        let uptime = ContinuousClock.now - started
        var lines = [
            "# HELP apt_layer_agent_uptime_seconds Seconds since the agent started.",
            "# TYPE apt_layer_agent_uptime_seconds gauge",
            "apt_layer_agent_uptime_seconds \(uptime.components.seconds)",
            "# HELP apt_layer_transaction_running 1 while a transaction runs.",
            "# TYPE apt_layer_transaction_running gauge",
            "apt_layer_transaction_running{operation=\"\(running?.operation ?? "")\"} \(running == nil ? 0 : 1)",
            "# HELP apt_layer_transactions_queued Transactions waiting to run.",
            "# TYPE apt_layer_transactions_queued gauge",
            "apt_layer_transactions_queued \(queued)",
            "# HELP apt_layer_transactions_total Finished transactions since start, by operation and final state.",
            "# TYPE apt_layer_transactions_total counter",
        ]
        for (key, value) in counts.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|")
            lines.append("apt_layer_transactions_total{operation=\"\(parts[0])\",state=\"\(parts[1])\"} \(value)")
        }
        let options = engineOptions
        if let status = try? await Engine.run({ _ in try Engine(options: options).status() }) {
            lines += [
                "# HELP apt_layer_deployments Deployments in the sysroot.",
                "# TYPE apt_layer_deployments gauge",
                "apt_layer_deployments \(status.deployments.count)",
                "# HELP apt_layer_layered_packages Packages requested on the default deployment.",
                "# TYPE apt_layer_layered_packages gauge",
                "apt_layer_layered_packages \(status.deployments.first.map { $0.requestedPackages.count + $0.requestedLocalPackages.count } ?? 0)",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
