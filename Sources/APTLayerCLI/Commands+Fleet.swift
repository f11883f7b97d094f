import APTLayerAPI
import APTLayerFleet
import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore

/// `apt-layer fleet …`: the fleet as a whole, for a person at a terminal.
struct Fleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Look at many agents at once.", subcommands: [FleetStatusCommand.self])
}

/// `apt-layer fleet status --inventory FILE | --prometheus URL`: asks every agent concurrently over
/// mTLS and prints one line per host and a summary per wave; unreachable hosts are listed.
struct FleetStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "One line per host (release, wave, update state, reason, last transaction) and a summary per wave.")

    @Option(help: "A file of agent URLs (https://HOST:PORT), one per line; # starts a comment.") var inventory: String?
    @Option(
        help:
            "A Prometheus server: the agents are the series of apt_layer_agent_info (their api_url label, else https://INSTANCE-HOST:--api-port)."
    )
    var prometheus: String?
    @Option(name: .customLong("api-port"), help: "The agents' API port when Prometheus gives no api_url label.") var apiPort = 7443
    @Option(help: "Client certificate.") var cert: String?
    @Option(help: "Client key.") var key: String?
    @Option(help: "CA that signed the agents' certificates.") var ca: String?
    @Option(help: "Seconds to wait for one agent.") var timeout = 10
    @Option(help: "Agents asked at the same time.") var concurrency = 32
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (inventory == nil) != (prometheus == nil) else { throw ValidationError("give exactly one of --inventory and --prometheus") }
        guard concurrency >= 1, timeout >= 1 else { throw ValidationError("--concurrency and --timeout must be at least 1") }
    }

    func run() throws {
        let hosts: [String]
        do {
            hosts =
                try inventory.map(Self.readInventory)
                ?? blocking { [prometheus, apiPort] in
                    try await Self.fromPrometheus(prometheus!, apiPort: apiPort)
                }
        } catch { throw fail(oneLine(error)) }
        guard !hosts.isEmpty else { throw fail("the inventory names no agents") }
        let rows = try blocking { [cert, key, ca, timeout, concurrency] in
            try await Self.ask(hosts, cert: cert, key: key, ca: ca, timeout: timeout, concurrency: concurrency)
        }
        if json {
            printJSON(FleetReport(hosts: rows, waves: FleetReport.summarize(rows)))
        } else {
            print(FleetReport.table(rows))
        }
        if rows.contains(where: { $0.error != nil }) { throw ExitCode(2) }
    }

    static func readInventory(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw AgentClient.Failure(message: "cannot read inventory \(path)")
        }
        var seen = Set<String>()
        var hosts: [String] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line =
                raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                .trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty { continue }
            guard let url = URL(string: line), url.scheme == "https", url.host != nil else {
                throw AgentClient.Failure(message: "\(path):\(n + 1): \(line.debugDescription) is not https://HOST:PORT")
            }
            if seen.insert(line).inserted { hosts.append(line) }
        }
        return hosts
    }

    /// The agents Prometheus knows: one per `instance` of `apt_layer_agent_info`.
    static func fromPrometheus(_ base: String, apiPort: Int) async throws -> [String] {
        struct Answer: Decodable {
            struct Data: Decodable {
                struct Series: Decodable { let metric: [String: String] }
                let result: [Series]
            }
            let status: String
            let data: Data?
            let error: String?
        }
        let trimmed = base.hasSuffix("/") ? String(base.dropLast()) : base
        let url = "\(trimmed)/api/v1/query?query=apt_layer_agent_info"
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let answer: Answer
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            answer = try JSONDecoder().decode(Answer.self, from: Data(body.readableBytesView))
        } catch {
            throw AgentClient.Failure(message: "cannot query Prometheus at \(url): \(error)")
        }
        guard answer.status == "success", let data = answer.data else {
            throw AgentClient.Failure(message: "Prometheus: \(answer.error ?? answer.status)")
        }
        var hosts: [String] = []
        for series in data.result {
            if let api = series.metric["api_url"], !api.isEmpty {
                hosts.append(api)
            } else if let instance = series.metric["instance"] {
                let host = instance.split(separator: ":").dropLast().joined(separator: ":")
                hosts.append("https://\(host.isEmpty ? instance : host):\(apiPort)")
            }
        }
        return Array(Set(hosts)).sorted()
    }

    /// Asks every agent, at most `concurrency` at a time; the rows keep the inventory's order.
    static func ask(_ hosts: [String], cert: String?, key: String?, ca: String?, timeout: Int, concurrency: Int) async throws -> [FleetReport.Host] {
        var rows = [FleetReport.Host?](repeating: nil, count: hosts.count)
        try await withThrowingTaskGroup(of: (Int, FleetReport.Host).self) { group in
            var next = 0
            func add() {
                let index = next
                let endpoint = AgentClient.Endpoint(address: hosts[index], cert: cert, key: key, ca: ca)
                group.addTask { (index, await askOne(endpoint, timeout: timeout)) }
                next += 1
            }
            while next < min(concurrency, hosts.count) { add() }
            while let (index, row) = try await group.next() {
                rows[index] = row
                if next < hosts.count { add() }
            }
        }
        return rows.compactMap { $0 }
    }

    static func askOne(_ endpoint: AgentClient.Endpoint, timeout: Int) async -> FleetReport.Host {
        do {
            return try await withThrowingTaskGroup(of: FleetReport.Host.self) { group in
                group.addTask {
                    try await AgentClient.with(endpoint) { client in
                        async let status = client.policy()
                        async let last = client.transactions(state: nil, kind: nil, limit: 1)
                        return FleetReport.Host(agent: endpoint.address, status: try await status, last: try await last.first)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeout))
                    throw AgentClient.Failure(message: "no answer within \(timeout) s")
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
        } catch {
            return FleetReport.Host(agent: endpoint.address, error: oneLine(error))
        }
    }
}

/// What `apt-layer fleet status --json` prints.
struct FleetReport: Encodable {
    struct Host: Encodable, Sendable {
        var agent: String
        var hostId: String?
        var fleet: String?
        var release: String?
        var wave: String?
        var state: String?
        var reason: String?
        var since: Date?
        var lastTransaction: LastTransaction?
        /// Why the agent could not be asked (unreachable, refused, timed out).
        var error: String?

        struct LastTransaction: Encodable, Sendable {
            var id: String
            var operation: String
            var state: String
            var finishedAt: Date?
        }

        init(agent: String, error: String) {
            self.agent = agent
            self.error = error
        }

        init(agent: String, status: Components.Schemas.FleetStatus, last: Components.Schemas.Transaction?) {
            self.agent = agent
            hostId = status.hostId
            fleet = status.fleet
            release = status.rollout?.release
            wave = status.rollout?.wave
            state = status.configured ? status.driver?.state.rawValue : "no-fleet"
            reason = status.rollout?.waitingFor != nil && status.driver?.state == .waiting ? status.rollout?.reason : status.driver?.reason
            since = status.driver?.since
            lastTransaction = last.map {
                LastTransaction(id: $0.id, operation: $0.operation.rawValue, state: $0.state.rawValue, finishedAt: $0.finishedAt)
            }
        }
    }

    struct Wave: Encodable {
        var wave: String
        var hosts: Int
        /// Hosts by update state.
        var states: [String: Int]
    }

    var hosts: [Host]
    var waves: [Wave]

    static func summarize(_ rows: [Host]) -> [Wave] {
        var byWave: [String: [String: Int]] = [:]
        for row in rows {
            let wave = row.error != nil ? "(unreachable)" : (row.wave ?? "(none)")
            byWave[wave, default: [:]][row.error != nil ? "unreachable" : (row.state ?? "?"), default: 0] += 1
        }
        return byWave.keys.sorted().map { Wave(wave: $0, hosts: byWave[$0]!.values.reduce(0, +), states: byWave[$0]!) }
    }

    /// Aligned columns, then the summary.
    static func table(_ rows: [Host]) -> String {
        var lines = [["AGENT", "RELEASE", "WAVE", "STATE", "LAST TRANSACTION", "REASON"]]
        for row in rows {
            if let error = row.error {
                lines.append([row.agent, "-", "-", "unreachable", "-", error])
                continue
            }
            let last = row.lastTransaction.map { "\($0.operation) \($0.state)" } ?? "-"
            lines.append([row.agent, row.release ?? "-", row.wave ?? "-", row.state ?? "-", last, row.reason ?? ""])
        }
        let widths = (0..<5).map { column in lines.map { $0[column].count }.max() ?? 0 }
        var text = lines.map { cells in
            (0..<5).map { cells[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + cells[5]
        }
        text.append("")
        for wave in summarize(rows) {
            let states = wave.states.keys.sorted().map { "\($0) \(wave.states[$0]!)" }.joined(separator: ", ")
            text.append("wave \(wave.wave): \(wave.hosts) host\(wave.hosts == 1 ? "" : "s") - \(states)")
        }
        let unreachable = rows.filter { $0.error != nil }.count
        text.append("\(rows.count) agents, \(rows.count - unreachable) answered, \(unreachable) unreachable")
        return text.joined(separator: "\n")
    }
}
