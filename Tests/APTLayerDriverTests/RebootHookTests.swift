import APTLayerFleet
import Foundation
import TestSupport
import Testing

@testable import APTLayerDriver

/// The policy's reboot hooks: run for real (commands in order, the first failure stops the rest,
/// timeouts and agent.yaml's cap, commands refused by agent.yaml, a unit that cannot start), and
/// refused in a policy when malformed.
@Suite("reboot hooks", .tags(.fast))
struct RebootHookTests {
    static func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apt-layer-hooks-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func commandsRunInOrderAndTheFirstFailureStopsTheRest() async throws {
        let dir = try Self.scratch()
        let runner = RebootHookRunner(allowCommands: true, timeoutCap: nil)
        let drained = await runner.run([
            .init(command: ["/bin/sh", "-c", "echo one >> \(dir)/log"]), .init(command: ["/bin/sh", "-c", "echo two >> \(dir)/log"]),
        ])
        #expect(drained == nil)
        #expect(try String(contentsOfFile: "\(dir)/log", encoding: .utf8) == "one\ntwo\n")

        let failed = await runner.run([
            .init(command: ["/bin/sh", "-c", "echo workloads still running >&2; exit 4"]), .init(command: ["/bin/touch", "\(dir)/after"]),
        ])
        #expect(failed == "command /bin/sh -c echo workloads still running >&2; exit 4: exited 4: workloads still running")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/after"), "a hook after a failed one ran")
    }

    @Test func timeoutsAndWhatAgentYAMLNarrows() async throws {
        let started = Date()
        let slow = await RebootHookRunner(allowCommands: true, timeoutCap: nil).run([
            .init(command: ["/bin/sleep", "30"], timeout: PolicyDuration(seconds: 1))
        ])
        #expect(slow == "command /bin/sleep 30: timed out after 1 s")
        // agent.yaml's cap wins over the policy's longer timeout.
        let capped = await RebootHookRunner(allowCommands: true, timeoutCap: 1).run([
            .init(command: ["/bin/sleep", "30"], timeout: PolicyDuration(seconds: 600))
        ])
        #expect(capped == "command /bin/sleep 30: timed out after 1 s")
        #expect(Date().timeIntervalSince(started) < 20, "the sleeping hooks were killed at their timeouts")
        let refused = await RebootHookRunner(allowCommands: false, timeoutCap: nil).run([.init(command: ["/bin/true"])])
        #expect(refused == "command /bin/true: command hooks are off in agent.yaml (fleet.hook-commands)")
        // A unit that cannot be started (none here; on a host: systemctl's own error) fails the hook.
        let unit = await RebootHookRunner(allowCommands: false, timeoutCap: 30).run([.init(unit: "apt-layer-no-such-unit.service")])
        #expect(unit?.hasPrefix("unit apt-layer-no-such-unit.service: ") == true, "\(unit ?? "nil")")
    }

    /// A minimal policy whose `stable` stream carries `stream` and whose top level carries `extra`.
    static func policy(stream: String = "", _ extra: String = "") -> String {
        """
        apiVersion: apt-layer/v1
        kind: FleetPolicy
        fleet: acme
        version: 1
        expires: 2099-01-01T00:00:00Z
        streams:
          stable:
            ref: acme/x
        \(stream)
        \(extra)

        """
    }

    @Test func malformedHooksAreRefusedInAPolicy() throws {
        func policy(_ reboot: String) -> String { Self.policy("reboot: \(reboot)") }
        let good = try FleetPolicy.decode(
            Data(policy("{pre-reboot: [{unit: drain.service, timeout: 10m}], post-boot: [{command: [/usr/bin/uncordon]}], hook-retry: 5m}").utf8))
        #expect(good.reboot?.preReboot == [.init(unit: "drain.service", timeout: PolicyDuration(seconds: 600))])
        #expect(good.reboot?.hookRetry == PolicyDuration(seconds: 300))
        for (bad, words) in [
            ("{pre-reboot: [{command: [drain]}]}", "absolute path"),
            ("{pre-reboot: [{command: [/bin/drain], unit: drain.service}]}", "exactly one of command, unit"),
            ("{post-boot: [{unit: ../x}]}", "systemd unit name"),
            ("{pre-reboot: [{unit: drain.service, timeout: 2h}]}", "1s to 1h"),
        ] {
            #expect {
                try FleetPolicy.decode(Data(policy(bad).utf8))
            } throws: {
                "\($0)".contains(words)
            }
        }
    }

    /// A release's `replace:` entries (a fleet-wide hotfix) are pinned .debs.
    @Test func releaseReplacementsArePinnedDebs() throws {
        func policy(_ replace: String) -> String {
            Self.policy(
                stream: [
                    "    release:", "      id: \"1\"", "      commit: \(String(repeating: "a", count: 64))",
                    "      published: 2026-12-01T00:00:00Z", "      open-through-wave: 0",
                    "      waves: [{name: all, until: 10000, start-after: 0s}]", "      replace: \(replace)",
                ].joined(separator: "\n"))
        }
        let sha = String(repeating: "b", count: 64)
        let good = try FleetPolicy.decode(Data(policy("[{url: \"https://u.example/curl_8.0_amd64.deb\", sha256: \(sha)}]").utf8))
        #expect(good.streams["stable"]?.release?.replace == [.init(url: "https://u.example/curl_8.0_amd64.deb", sha256: sha)])
        for (bad, words) in [
            ("[{url: \"https://u.example/curl_8.0_amd64.deb\", sha256: abc}]", "64 lowercase hex digits"),
            ("[{url: \"https://u.example/curl_8.0_amd64.deb\", sha256: \(sha.uppercased())}]", "64 lowercase hex digits"),
            ("[{url: \"ftp://u.example/curl.deb\", sha256: \(sha)}]", "http(s) or file URL of a .deb"),
            ("[{url: \"https://u.example/curl.tar\", sha256: \(sha)}]", "http(s) or file URL of a .deb"),
        ] {
            #expect {
                try FleetPolicy.decode(Data(policy(bad).utf8))
            } throws: {
                "\($0)".contains(words)
            }
        }
    }
}
