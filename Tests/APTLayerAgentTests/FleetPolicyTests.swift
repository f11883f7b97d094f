import APTLayerFleet
import Foundation
import TestSupport
import Testing

/// The agent's policy fetch and trust, end to end: nginx serves the policy over HTTPS and requires
/// the host's client certificate; signatures come from `ssh-keygen`; GET /v1/policy shows what was
/// accepted, what was refused and why, and where this host stands.
@Suite("Fleet policy through the agent", .serialized, .asRoot, .offPool)
struct FleetPolicyTests {
    static let machineID = "5f0c3a1e9b7d4c2a8e6f1b3d5a7c9e0f"

    /// An agent on a fresh bed configured for fleet `acme-prod`, stream `stable`.
    static func agent(server: PolicyServer, keys: PolicyKeys, bed: TestBed, extra: String = "", machineID: String = machineID) throws
        -> AgentBed
    {
        try "\(machineID)\n".write(toFile: "\(bed.fixtures)/machine-id", atomically: true, encoding: .utf8)
        let pki = "\(bed.fixtures)/pki"
        return try AgentBed(
            bed: bed,
            extraConfig: """
                fleet:
                  name: acme-prod
                  stream: stable
                  policy-url: \(server.base)/policy.yaml
                  signers: \(keys.signers)
                  ca: \(pki)/ca.crt
                  certificate: \(pki)/reader.crt
                  key: \(pki)/reader.key
                  poll-interval: 1h
                  machine-id-file: \(bed.fixtures)/machine-id
                  reboot-command: [/bin/true]
                \(extra)
                """)
    }

    /// Asks for a fetch and waits until the last fetch is newer than before.
    static func refresh(_ agent: AgentBed) throws -> [String: Any] {
        let before = try agent.request("GET", "/v1/policy", as: "reader").json
        let last = (before["lastFetch"] as? [String: Any])?["count"] as? Int
        #expect(try agent.request("POST", "/v1/policy/refresh", as: "operator").status == 202)
        for _ in 0..<200 {
            let now = try agent.request("GET", "/v1/policy", as: "reader").json
            if let count = (now["lastFetch"] as? [String: Any])?["count"] as? Int, count != last { return now }
            Thread.sleep(forTimeInterval: 0.05)
        }
        Issue.record("no new fetch")
        return before
    }

    @Test func acceptsSignedPoliciesRefusesTheRestAndKeepsTheLastGood() throws {
        let bed = try TestBed()
        let pki = "\(bed.fixtures)/pki"
        try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        let server = try PolicyServer(directory: "\(bed.fixtures)/policy-server", pki: pki)
        let keys = try PolicyKeys(directory: "\(bed.fixtures)/keys")
        let commit = bed.baseChecksum
        try keys.publish(PolicyKeys.policy(version: 5, commit: commit), on: server)
        let agent = try Self.agent(server: server, keys: keys, bed: bed)

        // The first fetch happens at start.
        var status: [String: Any] = [:]
        for _ in 0..<200 {
            status = try agent.request("GET", "/v1/policy", as: "reader").json
            if status["policy"] != nil { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let policy = try #require(status["policy"] as? [String: Any], "\(status)\n\(agent.logText)")
        #expect(policy["version"] as? Int == 5)
        #expect(policy["signers"] as? [String] == ["alice@acme"])
        let served = try Shell.run("sha256sum \(server.www)/policy.yaml").prefix(64)
        #expect(policy["sha256"] as? String == String(served))
        let hostID = try HostIdentity.hostID(machineID: Self.machineID)
        #expect(status["hostId"] as? String == hostID)
        let rollout = try #require(status["rollout"] as? [String: Any])
        #expect(rollout["bucket"] as? Int == HostIdentity.bucket(fleet: "acme-prod", salt: "stable", hostID: hostID))
        #expect(rollout["waitingFor"] as? String == "up-to-date")
        #expect((status["driver"] as? [String: Any])?["state"] as? String == "up-to-date")

        // Unchanged on the server: nginx answers our If-None-Match with 304.
        status = try Self.refresh(agent)
        #expect((status["lastFetch"] as? [String: Any])?["outcome"] as? String == "not-modified")

        // Each refusal is journaled, visible, and leaves version 5 in force.
        let refusals: [(String, String, String)] = [
            (PolicyKeys.policy(version: 6, commit: commit), "mallory", "below-threshold"),
            (PolicyKeys.policy(version: 4, commit: commit), "alice", "not-newer"),
            (PolicyKeys.policy(version: 6, fleet: "acme-lab", commit: commit), "alice", "wrong-fleet"),
            (PolicyKeys.policy(version: 6, expires: "2020-01-01T00:00:00Z", commit: commit), "alice", "expired"),
            (PolicyKeys.policy(version: 5, release: "2026.12.2", commit: commit), "alice", "equivocation"),
            ("apiVersion: apt-layer/v1\nkind: FleetPolicy\n", "alice", "invalid"),
        ]
        for (text, signer, kind) in refusals {
            try keys.publish(text, on: server, signer: signer)
            status = try Self.refresh(agent)
            #expect((status["lastFetch"] as? [String: Any])?["outcome"] as? String == "rejected", "\(kind)")
            #expect((status["rejections"] as? [[String: Any]])?.first?["kind"] as? String == kind)
            #expect((status["policy"] as? [String: Any])?["version"] as? Int == 5, "\(kind)")
        }
        // A signature file that does not belong to the bytes (tampered after signing).
        try Shell.run("echo '# tampered' >> \(server.www)/policy.yaml")
        try server.freshen("policy.yaml")
        status = try Self.refresh(agent)
        #expect((status["rejections"] as? [[String: Any]])?.first?["kind"] as? String == "below-threshold")

        // Too large: refused before it is read whole.
        try server.put("policy.yaml", String(repeating: "# padding\n", count: 110_000))
        status = try Self.refresh(agent)
        #expect((status["lastFetch"] as? [String: Any])?["outcome"] as? String == "error")
        let message = (status["lastFetch"] as? [String: Any])?["message"] as? String
        #expect(message?.contains("1048576") == true, "\(status)")

        // A newer, properly signed version is accepted, and survives a restart (the journal).
        try keys.publish(PolicyKeys.policy(version: 7, commit: commit), on: server)
        status = try Self.refresh(agent)
        #expect((status["policy"] as? [String: Any])?["version"] as? Int == 7)
        agent.stop()
        try server.put("policy.yaml", "unreachable: true\n")
        try agent.start()
        status = try agent.request("GET", "/v1/policy", as: "reader").json
        #expect((status["policy"] as? [String: Any])?["version"] as? Int == 7)
        #expect(try agent.request("GET", "/v1/policy", as: nil).status < 0 || agent.request("GET", "/v1/policy", as: nil).status == 403)

        // The CLI says the same, through the agent.
        let cli = try Shell.run(
            "\(Paths.cli) policy status --refresh --agent https://127.0.0.1:\(agent.port) --cert \(pki)/operator.crt --key \(pki)/operator.key --ca \(pki)/ca.crt"
        )
        #expect(cli.contains("Policy: version 7, signed by alice@acme"), "\(cli)")
        #expect(cli.contains("Host-id: \(hostID)"))
        // The file now served does not match its signature.
        #expect(cli.contains("Last refusal: ") && cli.contains("below-threshold"), "\(cli)")
        #expect(cli.contains("Waiting for: up-to-date"))
    }

    @Test func anAgentWithoutFleetConfigurationSaysSo() throws {
        let agent = try AgentBed()
        let reply = try agent.request("GET", "/v1/policy", as: "reader")
        #expect(reply.status == 200)
        #expect(reply.json["configured"] as? Bool == false)
        #expect(try agent.request("POST", "/v1/policy/refresh", as: "operator").status == 404)
        #expect(try agent.request("POST", "/v1/policy/refresh", as: "reader").status == 403)
    }
}
