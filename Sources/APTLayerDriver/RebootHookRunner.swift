import APTLayerEngine
import APTLayerFleet
import Foundation

/// Runs the policy's reboot hooks (`reboot.pre-reboot`, `reboot.post-boot`) in order, each within
/// its timeout: a command must exit 0; a unit is started with `systemctl start`, which waits for a
/// oneshot's run to end, and must not be failed afterwards. agent.yaml narrows what runs
/// (`hook-commands: false` refuses commands, `hook-timeout-max` caps each timeout).
struct RebootHookRunner: Sendable {
    var allowCommands: Bool
    var timeoutCap: Int?

    /// nil when every hook succeeded, else the first failure in one line (later hooks do not run).
    func run(_ hooks: [FleetPolicy.RebootHook]) async -> String? {
        for hook in hooks {
            let timeout = Double(min(hook.timeout?.seconds ?? 300, timeoutCap ?? Int.max))
            if let command = hook.command {
                guard allowCommands else { return "\(hook.label): command hooks are off in agent.yaml (fleet.hook-commands)" }
                let outcome = await HealthChecker.program(command, timeout: timeout)
                if let why = HealthChecker.failure(outcome, timeout: timeout) { return "\(hook.label): \(why)" }
            } else if let unit = hook.unit {
                let start = await HealthChecker.program(["systemctl", "start", unit], timeout: timeout)
                if let why = HealthChecker.failure(start, timeout: timeout) { return "\(hook.label): \(why)" }
                let failed = await HealthChecker.program(["systemctl", "is-failed", "--quiet", unit], timeout: 30)
                if failed.status == 0 { return "\(hook.label): the unit failed" }
            }
        }
        return nil
    }
}
