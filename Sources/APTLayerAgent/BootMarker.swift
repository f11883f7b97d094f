import APTLayerDriver
import APTLayerEngine
import APTLayerModel
import Foundation
import Logging
import ServiceLifecycle

extension AgentCore {
    /// The boot counter at start (docs/boot-counting.md): a fall-back is handled before anything
    /// else can change the host (the booted deployment becomes the default again; the fleet driver
    /// then sees the release not booted and denylists it); a stale counter is cleared. Never fatal:
    /// a block that cannot be read or written is logged and the agent starts.
    static func checkBoot(engineOptions: Engine.Options, logger: Logger) async -> Engine.BootCheck? {
        do {
            let check = try await Engine.run { _ in try Engine(options: engineOptions).checkBoot() }
            switch check {
            case .notCounted, .unarmed: break
            case .waiting(let deployment, let tries):
                logger.info("boot counter armed for a pending deployment", metadata: ["deployment": "\(deployment ?? "")", "tries": "\(tries)"])
            case .onTrial(let deployment, let tries):
                logger.notice(
                    "this boot is a counted trial of \(deployment) (\(tries) tries left); it is marked good once the host is up",
                    metadata: ["deployment": "\(deployment)", "tries-left": "\(tries)"])
            case .fellBack(let fallback):
                logger.critical(
                    "the last boot fell back: the new deployment did not come up within its tries; the booted deployment is the default again",
                    metadata: ["failed": "\(fallback.failedDeployment ?? "unknown")", "booted": "\(fallback.bootedDeployment)"])
            case .clearedStale(let deployment):
                logger.info("boot counter cleared: the deployment it protected is gone", metadata: ["deployment": "\(deployment ?? "")"])
            }
            return check
        } catch {
            logger.error("the boot counter could not be checked; the boot menu boots the default entry", metadata: ["error": "\(error)"])
            return nil
        }
    }
}

/// Marks a counted boot good once the host is up: after READY, when `multi-user.target` is
/// active. A boot the fleet driver is verifying is left to it (good only after the policy's health
/// checks and settle time, ``UpdateDriver``).
struct BootMarkerService: Service {
    let core: AgentCore
    let ready: ReadyGate

    /// Marks the boot good when it is a trial, then waits for the shutdown (a service that
    /// returns would end the agent's service group).
    func run() async throws {
        if case .onTrial(let deployment, _) = core.bootCheck { await markWhenUp(deployment) }
        try? await gracefulShutdown()
    }

    func markWhenUp(_ deployment: String) async {
        await cancelWhenGracefulShutdown {
            await ready.waitUntilReady()
            if let driver = core.driver, [.rebooting, .verifying, .rollingBack].contains(await driver.status().driver.state) {
                core.logger.info("the fleet driver marks this boot good after its health checks", metadata: ["deployment": "\(deployment)"])
                return
            }
            // Without systemd (a container) there is no target to wait for.
            if FileManager.default.fileExists(atPath: "/run/systemd/system") {
                while !Task.isCancelled {
                    let result = await Self.program(["systemctl", "is-active", "--quiet", "multi-user.target"])
                    if result.status == 0 { break }
                    try? await Task.sleep(for: .seconds(2))
                }
            }
            guard !Task.isCancelled else { return }
            do {
                let marked = try await Engine.run { [options = core.engineOptions] _ in try Engine(options: options).markBootGood() }
                if marked { core.logger.notice("boot marked good: the boot counter is cleared", metadata: ["deployment": "\(deployment)"]) }
            } catch {
                core.logger.error("the boot counter could not be cleared", metadata: ["error": "\(error)"])
            }
        }
    }

    static func program(_ argv: [String]) async -> Engine.ProgramResult {
        (try? await Engine.run { _ in Engine.runProgram(argv, timeout: 10) })
            ?? Engine.ProgramResult(status: -1, output: "cancelled", timedOut: false)
    }
}
