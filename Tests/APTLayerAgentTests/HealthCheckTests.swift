import APTLayerDriver
import APTLayerFleet
import AsyncHTTPClient
import Foundation
import TestSupport
import Testing

/// The policy's health checks, run for real: a command's exit status and timeout, an HTTP answer
/// from a real server, a systemd unit.
@Suite("health checks", .asRoot, .offPool)
struct HealthCheckTests {
    @Test func commandsHTTPAndUnits() async throws {
        let dir = try Shell.run("mktemp -d /tmp/apt-layer-health.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Shell.run("rm -rf \(dir)") }
        let port = try AgentBed.freePort()
        try Shell.run("mkdir -p \(dir)/www && echo ok > \(dir)/www/healthz")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", "\(dir)/www", "\(port)"]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: children of this process start with SIGTERM blocked (the mask is inherited), so
        // terminate() would leave the server running and waitUntilExit() would wait forever.
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        for _ in 0..<100 where try Shell.status("curl -sf -o /dev/null http://127.0.0.1:\(port)/healthz").0 != 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let checker = HealthChecker(client: client)
        let checks: [FleetPolicy.HealthCheck] = [
            .init(command: ["/bin/true"]),
            .init(command: ["/bin/sh", "-c", "echo broken disk >&2; exit 3"]),
            .init(command: ["/bin/sleep", "30"], timeout: PolicyDuration(seconds: 1)),
            .init(http: "http://127.0.0.1:\(port)/healthz"),
            .init(http: "http://127.0.0.1:\(port)/missing", expect: 200),
            .init(http: "http://127.0.0.1:\(port)/missing", expect: 404),
            .init(http: "http://127.0.0.1:1/healthz"),
            .init(unit: "apt-layer-no-such-unit.service"),
        ]
        let started = Date()
        let results = await checker.run(checks)
        try await client.shutdown()
        #expect(results.map(\.passed) == [true, false, false, true, false, true, false, false], "\(results)")
        #expect(results[1].detail == "exited 3: broken disk")
        #expect(results[2].detail == "timed out after 1 s")
        #expect(results[4].detail == "answered 404, expected 200")
        #expect(results[7].detail == "apt-layer-no-such-unit.service is not active")
        // The sleeping command was killed at its timeout, not waited for.
        #expect(Date().timeIntervalSince(started) < 25)
    }
}
