import APTLayerEngine
import APTLayerFleet
import APTLayerModel
import AsyncHTTPClient
import Foundation

/// Runs a policy's health checks: a systemd unit must be active (`systemctl is-active`), a
/// command must exit 0, an HTTP URL must answer with the expected status.
public struct HealthChecker: Sendable {
    /// One check's outcome.
    public struct Result: Sendable, Equatable {
        /// What was checked (`unit ssh.service`, `command /usr/libexec/…`, `http http://…`).
        public var check: String
        public var passed: Bool
        /// Why it failed (one line), or empty.
        public var detail: String
    }

    let client: HTTPClient

    public init(client: HTTPClient) { self.client = client }

    /// Runs every check once, in order.
    public func run(_ checks: [FleetPolicy.HealthCheck]) async -> [Result] {
        var results: [Result] = []
        for check in checks { results.append(await run(check)) }
        return results
    }

    func run(_ check: FleetPolicy.HealthCheck) async -> Result {
        let timeout = Double(check.timeout?.seconds ?? 30)
        if let unit = check.unit {
            let outcome = await Self.program(["systemctl", "is-active", "--quiet", unit], timeout: timeout)
            return Result(check: "unit \(unit)", passed: outcome.status == 0, detail: outcome.status == 0 ? "" : "\(unit) is not active")
        }
        if let command = check.command {
            let outcome = await Self.program(command, timeout: timeout)
            let failure = Self.failure(outcome, timeout: timeout)
            return Result(check: "command \(command.joined(separator: " "))", passed: failure == nil, detail: failure ?? "")
        }
        if let url = check.http {
            let expect = check.expect ?? 200
            do {
                var request = HTTPClientRequest(url: url)
                request.method = .GET
                let response = try await client.execute(request, timeout: .seconds(Int64(timeout)))
                _ = try? await response.body.collect(upTo: 1 << 20)
                let code = Int(response.status.code)
                return Result(check: "http \(url)", passed: code == expect, detail: code == expect ? "" : "answered \(code), expected \(expect)")
            } catch {
                return Result(check: "http \(url)", passed: false, detail: "\(error)")
            }
        }
        return Result(check: "empty check", passed: false, detail: "no unit, command or http")
    }

    /// Why a program's run failed (timed out, or its exit status and last output line), or nil.
    static func failure(_ outcome: Engine.ProgramResult, timeout: Double) -> String? {
        if outcome.timedOut { return "timed out after \(Int(timeout)) s" }
        guard outcome.status != 0 else { return nil }
        let last = outcome.output.split(separator: "\n").last.map(String.init) ?? ""
        return "exited \(outcome.status)\(last.isEmpty ? "" : ": \(last.prefix(200))")"
    }

    /// Runs a program off the cooperative pool.
    static func program(_ argv: [String], timeout: Double) async -> Engine.ProgramResult {
        (try? await Engine.run { _ in Engine.runProgram(argv, timeout: timeout) })
            ?? Engine.ProgramResult(status: -1, output: "cancelled", timedOut: false)
    }
}
