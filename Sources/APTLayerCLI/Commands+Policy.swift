import APTLayerAPI
import APTLayerFleet
import APTLayerModel
import ArgumentParser
import Foundation

/// `apt-layer policy`: check a signed fleet policy and see where a host stands in its rollout.
struct Policy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Verify a signed fleet policy, or explain a host's wave, start time and windows.",
        subcommands: [Verify.self, Explain.self, PolicyStatus.self]
    )

    /// `apt-layer policy verify POLICY --signature SIG --signers ALLOWED_SIGNERS [--threshold N]`.
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check a policy's signatures against an allowed_signers file, its fields and its expiry.")

        @Argument(help: "The policy file (YAML), exactly as served.") var policy: String
        @Option(help: "The detached signature(s): `ssh-keygen -Y sign -n apt-layer-policy` output, concatenated for a threshold.")
        var signature: String
        @Option(help: "An OpenSSH allowed_signers file.") var signers: String
        @Option(help: "Distinct trusted keys required.") var threshold = 1
        @Option(help: "Also require the policy to be for this fleet.") var fleet: String?

        func run() throws {
            do {
                let bytes = try read(policy)
                let sig = String(decoding: try read(signature), as: UTF8.self)
                let allowed = try AllowedSigners(String(decoding: try read(signers), as: UTF8.self))
                let trust = PolicyTrust(signers: allowed, threshold: threshold, fleet: fleet)
                let accepted = try trust.accept(bytes, signature: sig, last: nil)
                let p = accepted.policy
                print(
                    "policy \(p.fleet) version \(p.version) valid: signed by \(accepted.signers.joined(separator: ", ")); expires \(FleetPolicy.format(p.expires))"
                )
            } catch {
                throw fail("\(policy): \(oneLine(error))")
            }
        }
    }

    /// `apt-layer policy explain POLICY --machine-id HEX32 --stream NAME [--at RFC3339] [--json]`.
    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "For a machine-id and stream: host-id, bucket, wave, when it becomes eligible, the next window and why it waits.",
            discussion: "Works offline: no network, no sysroot, no signature check (use `policy verify`).")

        @Argument(help: "The policy file (YAML).") var policy: String
        @Option(name: .customLong("machine-id"), help: "The host's machine-id (32 hex characters); it is never sent anywhere.")
        var machineID: String
        @Option(help: "The host's stream.") var stream: String
        @Option(help: "The instant to evaluate at (RFC 3339; default now).") var at: String?
        @Option(help: "The host's current base commit, to tell up-to-date.") var current: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let explanation: PolicyExplanation
            let hostID: String
            do {
                hostID = try HostIdentity.hostID(machineID: machineID)
            } catch {
                throw fail("--machine-id: \(error)")
            }
            do {
                let parsed = try FleetPolicy.decode(try read(policy))
                var now = Date()
                if let at {
                    guard let date = RFC3339.parse(at) else { throw ValidationError("--at must be an RFC 3339 time, got \(at.debugDescription)") }
                    now = date
                }
                explanation = parsed.explain(stream: stream, hostID: hostID, at: now, current: current)
            } catch let error as ValidationError {
                throw fail(error.message)
            } catch {
                throw fail("\(policy): \(oneLine(error))")
            }
            if json {
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .custom { date, encoder in
                    var container = encoder.singleValueContainer()
                    try container.encode(FleetPolicy.format(date))
                }
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(explanation), as: UTF8.self))
            } else {
                print(explanation.text)
            }
        }
    }
}

/// `apt-layer policy status [--refresh] [--json]`: what the agent on this host (or `--agent`) says.
struct PolicyStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "The agent's fleet status: policy in force, last fetch, refusals, this host's wave and window, why it waits, the driver's state, the denylist."
    )
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Fetch the policy now first.") var refresh = false
    @Flag(help: "Print the JSON document of GET /v1/policy.") var json = false

    func run() throws {
        guard let endpoint = global.agentEndpoint else {
            throw fail("policy status needs an agent (its local socket, or --agent); `policy explain` works offline")
        }
        let status: Components.Schemas.FleetStatus
        do {
            status = try blocking {
                try await AgentClient.with(endpoint) { client in
                    if refresh {
                        let before = try await client.policy().lastFetch?.count
                        try await client.refreshPolicy()
                        for _ in 0..<100 {
                            if try await client.policy().lastFetch?.count != before { break }
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                    return try await client.policy()
                }
            }
        } catch { throw fail(oneLine(error)) }
        if json { printJSON(status) } else { print(status.text) }
    }
}

extension Components.Schemas.FleetStatus {
    /// `Key: value` lines, as `apt-layer status` prints.
    var text: String {
        guard configured else { return "This agent has no fleet configuration." }
        var lines = ["Fleet: \(fleet ?? "?") (stream \(stream ?? "?"))", "Host-id: \(hostId ?? "?")"]
        if let p = policy {
            lines.append("Policy: version \(p.version), signed by \(p.signers.joined(separator: ", ")), expires \(FleetPolicy.format(p.expires))")
        } else {
            lines.append("Policy: none accepted")
        }
        if let f = lastFetch { lines.append("Last fetch: \(FleetPolicy.format(f.at)) \(f.outcome.rawValue): \(f.message)") }
        if let r = rejections?.first { lines.append("Last refusal: \(FleetPolicy.format(r.at)) \(r.kind.rawValue): \(r.message)") }
        if let r = rollout {
            if let release = r.release { lines.append("Release: \(release) (\((r.commit ?? "").prefix(12)))") }
            lines.append("Bucket: \(r.bucket), wave \(r.wave ?? "none")\(r.eligibleAt.map { ", eligible at \(FleetPolicy.format($0))" } ?? "")")
            lines.append(
                "Window: \(r.windowOpen ? "open" : "closed")\(r.nextWindow.map { r.windowOpen ? "" : "; next opens \(FleetPolicy.format($0))" } ?? "")"
            )
            lines.append("Waiting for: \(r.waitingFor?.rawValue ?? "nothing") - \(r.reason)")
        }
        if let d = driver {
            lines.append("State: \(d.state.rawValue) since \(FleetPolicy.format(d.since)) - \(d.reason)")
            if d.attempts > 0 { lines.append("Attempts: \(d.attempts)") }
        }
        for entry in denylist ?? [] { lines.append("Denylisted: \(entry.release) (\(entry.commit.prefix(12))) - \(entry.reason)") }
        return lines.joined(separator: "\n")
    }
}

extension PolicyExplanation {
    /// The human form: one `Key: value` line each, as `apt-layer status` prints.
    var text: String {
        var lines = [
            "Fleet: \(fleet) (policy version \(policyVersion))",
            "Stream: \(stream)",
            "Host-id: \(hostId)",
            "Bucket: \(bucket)",
        ]
        if let release, let commit { lines.append("Release: \(release) (\(commit.prefix(12)))") }
        lines.append("Wave: \(wave.map { "\($0) (index \(waveIndex ?? 0))" } ?? "none")")
        if let eligibleAt { lines.append("Eligible at: \(FleetPolicy.format(eligibleAt))") }
        lines.append(
            "Window: \(windowOpen ? "open" : "closed")\(nextWindow.map { windowOpen ? "" : "; next opens \(FleetPolicy.format($0))" } ?? "")")
        lines.append("Waiting for: \(waitingFor?.rawValue ?? "nothing") - \(reason)")
        return lines.joined(separator: "\n")
    }
}

/// Reads a whole file, naming it in the error.
private func read(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw PolicyError.invalid("cannot read \(path)")
    }
    return data
}
