import APTLayerDriver
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import APTLayerTelemetry
import Foundation

/// The fleet half of `/metrics`: the update driver (Zincati-style names), the durable counters,
/// the telemetry outbox and countme.
extension Metrics {
    static func fleetLines(driver: UpdateDriver?, journal: Journal, telemetry: Telemetry?) async -> [String] {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [String]) {
            lines += ["# HELP \(name) \(help)", "# TYPE \(name) \(type)"] + samples
        }
        let counters = (try? await journal.off { try $0.counters() }) ?? [:]
        if let status = await driver?.status() {
            let state = status.driver.state
            metric(
                "apt_layer_update_state", "gauge", "1 for the update driver's current state.",
                UpdateState.allCases.map { "apt_layer_update_state{state=\"\($0.rawValue)\"} \($0 == state ? 1 : 0)" })
            metric(
                "apt_layer_update_state_since_timestamp_seconds", "gauge", "When the current state began.",
                ["apt_layer_update_state_since_timestamp_seconds \(Int(status.driver.since.timeIntervalSince1970))"])
            let explanation = status.explanation
            let booted = explanation?.waitingFor == .upToDate ? explanation?.release ?? "" : ""
            let labels = [
                ("fleet", status.fleet), ("stream", status.stream), ("release", explanation?.release ?? ""),
                ("wave", explanation?.wave ?? ""), ("booted_release", booted),
            ].map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
            metric(
                "apt_layer_update_info", "gauge", "The release the policy rolls out, this host's wave and booted release.",
                ["apt_layer_update_info{\(labels)} 1"])
            let reasons: [String] =
                state == .waiting
                ? [explanation?.waitingFor.map { "apt_layer_update_wait_reason{reason=\"\($0.rawValue)\"} 1" }].compactMap { $0 } : []
            metric("apt_layer_update_wait_reason", "gauge", "1 for why the driver waits (only while waiting).", reasons)
            metric(
                "apt_layer_maintenance_window_open", "gauge", "1 while the policy's and the local maintenance windows are open.",
                ["apt_layer_maintenance_window_open \(explanation?.windowOpen == true ? 1 : 0)"])
            metric(
                "apt_layer_update_windows_missed", "gauge", "Windows that opened and closed while this host was eligible and waiting.",
                ["apt_layer_update_windows_missed \(status.windowsMissed)"])
            metric(
                "apt_layer_policy_version", "gauge", "Version of the policy in force (0: none).",
                ["apt_layer_policy_version \(status.policy?.policy.version ?? 0)"])
            metric(
                "apt_layer_policy_expiry_timestamp_seconds", "gauge", "When the policy in force expires (0: none).",
                ["apt_layer_policy_expiry_timestamp_seconds \(Int(status.policy?.policy.expires.timeIntervalSince1970 ?? 0))"])
            metric(
                "apt_layer_last_policy_fetch_timestamp_seconds", "gauge", "When the policy was last fetched (0: not since start).",
                ["apt_layer_last_policy_fetch_timestamp_seconds \(Int(status.lastFetch?.at.timeIntervalSince1970 ?? 0))"])
            metric(
                "apt_layer_driver_journal_failures_total", "counter",
                "Update driver steps not taken since start: the journal could not be written or a fact guarding the step could not be read.",
                ["apt_layer_driver_journal_failures_total \(status.journalFailures)"])
            metric(
                "apt_layer_policy_fetches_total", "counter", "Policy fetches since start, by outcome.",
                FleetStatus.FetchOutcome.allCases.map { "apt_layer_policy_fetches_total{result=\"\($0.rawValue)\"} \(status.fetchOutcomes[$0] ?? 0)" }
            )
        }
        let driverCounters: [(JournalCounter, String, String)] = [
            (.rebootSlotWaits, "apt_layer_reboot_slot_waits_total", "Times the FleetLock server had no free reboot slot."),
            (.finalizations, "apt_layer_finalizations_total", "Staged releases finalized (reboots started)."),
            (.healthFailures, "apt_layer_health_failures_total", "Boots into a release that failed verification."),
            (.rollbacks, "apt_layer_rollbacks_total", "Rollbacks to the previous deployment."),
            (.deployFailures, "apt_layer_deploy_failures_total", "Staging or finalizing that failed."),
            (.bootFallbacks, "apt_layer_boot_fallbacks_total", "Boots the boot counter sent back to the previous deployment."),
            (.reportsSent, "apt_layer_telemetry_reports_sent_total", "Status reports the collector accepted."),
            (.reportsDropped, "apt_layer_telemetry_reports_dropped_total", "Status reports dropped because the outbox was full."),
            (.reportsDeadLettered, "apt_layer_telemetry_reports_dead_lettered_total", "Status reports the collector refused for good (4xx)."),
        ]
        for (counter, name, help) in driverCounters {
            metric(name, "counter", help + " Kept across restarts.", ["\(name) \(counters[counter] ?? 0)"])
        }
        let outbox = (try? await journal.off { try $0.outboxStats() }) ?? OutboxStats(count: 0, oldest: nil)
        metric(
            "apt_layer_telemetry_outbox_reports", "gauge", "Status reports waiting to be sent.",
            ["apt_layer_telemetry_outbox_reports \(outbox.count)"])
        let age = outbox.oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0
        metric(
            "apt_layer_telemetry_outbox_oldest_age_seconds", "gauge", "Age of the oldest waiting report (0: none).",
            ["apt_layer_telemetry_outbox_oldest_age_seconds \(String(format: "%.3f", age))"])
        metric(
            "apt_layer_countme_last_sent_timestamp_seconds", "gauge", "When this host was last counted (0: never).",
            ["apt_layer_countme_last_sent_timestamp_seconds \(Int(telemetry?.countmeLastSent?.timeIntervalSince1970 ?? 0))"])
        return lines
    }

    /// A label value in the exposition format.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
