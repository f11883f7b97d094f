import APTLayerFleet
import Foundation
import TestSupport
import Testing

/// The shipped Prometheus configuration (deploy/prometheus, file service discovery and the alert
/// rules) in the real Prometheus, scraping three real agents; queried over its HTTP API. Then
/// `apt-layer fleet status` finds the agents through that Prometheus, and through an inventory
/// with one unreachable host.
@Suite("Prometheus tier", .serialized, .asRoot, .offPool)
struct PrometheusTierTests {
    static let machineIDs = ["11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333"]

    /// `GET /api/v1/query`: the result vector.
    static func query(_ port: Int, _ promql: String) throws -> [[String: Any]] {
        let text = try Shell.run("curl -sf -G --data-urlencode \(Shell.quote("query=\(promql)")) http://127.0.0.1:\(port)/api/v1/query")
        let json = (try JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
        #expect(json?["status"] as? String == "success", "\(text)")
        return ((json?["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
    }

    @Test func prometheusScrapesAgentsAndFleetStatusFindsThem() throws {
        let first = try TestBed()
        let pki = "\(first.fixtures)/pki"
        try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        let server = try PolicyServer(directory: "\(first.fixtures)/policy-server", pki: pki)
        let keys = try PolicyKeys(directory: "\(first.fixtures)/keys")
        try keys.publish(PolicyKeys.policy(version: 3, commit: first.baseChecksum), on: server)
        var agents: [AgentBed] = []
        for (n, machineID) in Self.machineIDs.enumerated() {
            let bed = n == 0 ? first : try TestBed()
            if n > 0 { try Shell.run("cp -a \(pki) \(bed.fixtures)/pki") }
            // Every bed's base is built the same way, but commit checksums carry a timestamp: the
            // policy names the first bed's; the others see an update available.
            agents.append(
                try FleetPolicyTests.agent(server: server, keys: keys, bed: bed, extra: "telemetry: {countme: false}", machineID: machineID))
        }
        for agent in agents {
            try agent.eventually("a policy") { try agent.metric("apt_layer_policy_version") == 3 }
        }

        // promtool lints each agent's exposition.
        for agent in agents {
            let metrics = "\(first.fixtures)/metrics-\(agent.metricsPort).txt"
            try Shell.run("curl -sf http://127.0.0.1:\(agent.metricsPort)/metrics -o \(metrics)")
            let (code, output) = try Shell.status("promtool check metrics < \(metrics)")
            #expect(code == 0, "\(output)")
        }

        // The shipped configuration, intervals shortened, targets written for file SD.
        let prom = "\(first.fixtures)/prometheus"
        try Shell.run(
            "mkdir -p \(prom)/targets && cp \(Paths.packageRoot)/deploy/prometheus/prometheus.yml \(Paths.packageRoot)/deploy/prometheus/alerts.yml \(prom)/"
        )
        try Shell.run(
            "sed -i -e 's/: 30s/: 1s/' -e 's/scrape_timeout: 10s/scrape_timeout: 1s/' -e 's/refresh_interval: 5m/refresh_interval: 1s/' \(prom)/prometheus.yml"
        )
        var targets = ""
        for agent in agents {
            targets += """
                - targets: ["127.0.0.1:\(agent.metricsPort)"]
                  labels: {api_url: "https://127.0.0.1:\(agent.port)", site: test}

                """
        }
        try targets.write(toFile: "\(prom)/targets/agents.yml", atomically: true, encoding: .utf8)
        let port = try AgentBed.freePort()
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = [
            "--config.file=\(prom)/prometheus.yml", "--storage.tsdb.path=\(prom)/data", "--web.listen-address=127.0.0.1:\(port)",
        ]
        prometheus.standardInput = FileHandle.nullDevice
        prometheus.standardOutput = FileHandle.nullDevice
        prometheus.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/null"))
        try prometheus.run()
        defer {
            kill(prometheus.processIdentifier, SIGKILL)
            prometheus.waitUntilExit()
        }
        try agents[0].eventually("three targets up", seconds: 90) {
            (try? Self.query(port, "sum(up{job=\"apt-layer\"})").first?["value"] as? [Any])?.last as? String == "3"
        }
        let states = try Self.query(port, "apt_layer_update_state == 1")
        #expect(states.count == 3)
        #expect(states.allSatisfy { ($0["metric"] as? [String: String])?["site"] == "test" })
        let info = try Self.query(port, "apt_layer_update_info")
        #expect(info.count == 3)
        #expect(info.allSatisfy { ($0["metric"] as? [String: String])?["release"] == "2026.12.1" })
        #expect(info.allSatisfy { !((($0["metric"] as? [String: String])?["wave"]) ?? "").isEmpty })
        let upToDate = try Self.query(port, "apt_layer_update_info{booted_release=\"2026.12.1\"}")
        #expect(upToDate.count == 1, "\(upToDate)")
        // The alert rules loaded and evaluate without error.
        let rules = try Shell.run("curl -sf http://127.0.0.1:\(port)/api/v1/rules")
        let groups =
            ((try JSONSerialization.jsonObject(with: Data(rules.utf8)) as? [String: Any])?["data"] as? [String: Any])?["groups"] as? [[String: Any]]
        let loaded = (groups ?? []).flatMap { ($0["rules"] as? [[String: Any]]) ?? [] }
        #expect(loaded.count >= 8)
        try agents[0].eventually("rules evaluated", seconds: 30) {
            let text = try Shell.run("curl -sf http://127.0.0.1:\(port)/api/v1/rules")
            return !text.contains("\"health\":\"unknown\"")
        }
        #expect(!(try Shell.run("curl -sf http://127.0.0.1:\(port)/api/v1/rules")).contains("\"health\":\"err\""))

        // fleet status through Prometheus: every agent answers over mTLS.
        let tls = "--cert \(pki)/reader.crt --key \(pki)/reader.key --ca \(pki)/ca.crt"
        let json = try Shell.run("\(Paths.cli) fleet status --prometheus http://127.0.0.1:\(port) \(tls) --json")
        let report = (try JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any]
        let hosts = (report?["hosts"] as? [[String: Any]]) ?? []
        #expect(hosts.count == 3, "\(json)")
        #expect(Set(hosts.compactMap { $0["hostId"] as? String }) == Set(try Self.machineIDs.map { try HostIdentity.hostID(machineID: $0) }))
        #expect(hosts.allSatisfy { $0["release"] as? String == "2026.12.1" && $0["error"] == nil })
        #expect(hosts.filter { $0["state"] as? String == "up-to-date" }.count == 1, "\(json)")

        // An inventory with a host that does not answer: listed, exit status 2.
        let inventory = "\(first.fixtures)/inventory"
        let dead = try AgentBed.freePort()
        try (agents.map { "https://127.0.0.1:\($0.port)" } + ["https://127.0.0.1:\(dead)  # gone"]).joined(separator: "\n")
            .write(toFile: inventory, atomically: true, encoding: .utf8)
        let (code, table) = try Shell.status("\(Paths.cli) fleet status --inventory \(inventory) \(tls) --timeout 5")
        #expect(code == 2, "\(table)")
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("AGENT") == true)
        #expect(lines.filter { $0.contains("2026.12.1") }.count == 3, "\(table)")
        #expect(lines.contains { $0.hasPrefix("https://127.0.0.1:\(dead)") && $0.contains("unreachable") }, "\(table)")
        #expect(lines.contains { $0.hasPrefix("wave ") }, "\(table)")
        #expect(lines.last == "4 agents, 3 answered, 1 unreachable", "\(table)")
    }
}
