import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport
import Testing

/// The CLI through the agent's socket, through mTLS, and locally: one operation, one journal, one
/// status document.
@Suite("one transaction path", .asRoot, .offPool)
struct OnePathTests {
    /// The three ways to reach the same host.
    static func paths(_ agent: AgentBed) -> [(name: String, arguments: String, requester: String)] {
        [
            ("socket", "--agent unix:\(agent.socket)", "uid:0"),
            (
                "mtls",
                "--agent https://127.0.0.1:\(agent.port) --cert \(agent.pki)/operator.crt --key \(agent.pki)/operator.key --ca \(agent.pki)/ca.crt",
                "operator"
            ),
            ("local", "--sysroot \(agent.bed.sysroot)", "local:uid:0"),
        ]
    }

    /// What a dry run must leave exactly as it was.
    static func snapshot(_ bed: TestBed) throws -> String {
        let status = try bed.status
        let refs = try Shell.run("ostree refs --repo=\(bed.sysroot)/ostree/repo | sort")
        let deployments = try Shell.run("ls \(bed.sysroot)/ostree/deploy/debian/deploy; readlink \(bed.sysroot)/boot/loader")
        return "\(status)\n\(refs)\n\(deployments)"
    }

    @Test func dryRunIsTheSameOperationOnEveryPathAndChangesNothing() throws {
        let agent = try AgentBed()
        let bed = agent.bed
        _ = try bed.engine().install(["fixture-app"])
        try bed.composeBase(version: "2.0", note: "two")
        try bed.composeBase(ref: "test/other", version: "3.0", note: "other")
        let journal = try Journal(path: Journal.defaultPath(sysroot: bed.sysroot))
        let flags = "--refresh --lock-finalization --allow-kernel"
        let every = LayeringFlags(dryRun: true, allowKernel: true, lockFinalization: true, refresh: true)
        let cases: [(String, HostOperation)] = [
            ("install -n \(flags) fixture-conf", .install(packages: ["fixture-conf"], flags: every)),
            ("uninstall -n \(flags) fixture-app", .uninstall(packages: ["fixture-app"], all: false, flags: every)),
            ("override remove -n \(flags) fixture-removable", .overrideRemove(packages: ["fixture-removable"], flags: every)),
            (
                "override reset -n --idempotent \(flags) fixture-removable",
                .overrideReset(
                    packages: ["fixture-removable"], all: false,
                    flags: .init(idempotent: true, dryRun: true, allowKernel: true, lockFinalization: true, refresh: true))
            ),
            ("upgrade -n \(flags)", .upgrade(check: false, flags: every)),
            ("deploy -n \(flags) 2.0", .deploy(target: "2.0", flags: every)),
            ("rebase -n \(flags) test/other", .rebase(ref: "test/other", flags: every)),
        ]
        let before = try Self.snapshot(bed)
        for (verb, expected) in cases {
            var outcomes: [String: (Int32, String)] = [:]
            for path in Self.paths(agent) {
                let (code, output) = try Shell.status("\(Paths.cli) \(verb) -q \(path.arguments) 2>&1", environment: TestBed.environment)
                let newest = try #require(try journal.transactions(limit: 1).first)
                #expect(newest.operation == expected, "\(verb) via \(path.name)")
                #expect(newest.requester == path.requester)
                #expect(newest.state == .succeeded, "\(verb) via \(path.name): \(output)")
                outcomes[path.name] = (code, output)
            }
            // The same exit code and the same words (the planned diff and summary) on every path.
            #expect(Set(outcomes.values.map(\.0)).count == 1, "\(verb): \(outcomes)")
            #expect(Set(outcomes.values.map(\.1)).count == 1, "\(verb): \(outcomes)")
            #expect(outcomes["local"]?.1.contains("Would") == true || outcomes["local"]?.1.contains("No change") == true, "\(verb): \(outcomes)")
        }
        #expect(try Self.snapshot(bed) == before)
        #expect(bed.leftovers.isEmpty)
    }

    /// The verbs that are not layering, on each path: the journaled operation is the one the verb
    /// names, whoever carried it.
    @Test func deploymentVerbsAreTheSameOperationOnEveryPath() throws {
        let agent = try AgentBed()
        let journal = try Journal(path: Journal.defaultPath(sysroot: agent.bed.sysroot))
        let cases: [(String, HostOperation)] = [
            ("kargs --append via=path --delete nothing-there", .kargs(.init(append: ["via=path"], delete: ["nothing-there"]))),
            ("kargs --append via=path", .kargs(.init(append: ["via=path"]))),
            ("pin 0", .pin(index: 0)), ("unpin 0", .unpin(index: 0)), ("rollback", .rollback),
            ("cleanup -r", .cleanup(pending: false, rollback: true)), ("finalize", .finalize),
            ("upgrade --check", .upgrade(check: true, flags: .init())),
        ]
        for (verb, expected) in cases {
            for path in Self.paths(agent) {
                let (code, output) = try Shell.status("\(Paths.cli) \(verb) -q \(path.arguments) 2>&1", environment: TestBed.environment)
                let newest = try #require(try journal.transactions(limit: 1).first)
                #expect(newest.operation == expected, "\(verb) via \(path.name)")
                #expect(newest.requester == path.requester, "\(verb) via \(path.name)")
                #expect(newest.state.isFinished)
                // A failure is one line on every path (an absent kernel argument, nothing to finalize).
                if code == 1 {
                    #expect(output.split(separator: "\n").count == 1 && output.hasPrefix("error: "), "\(verb) via \(path.name): \(output)")
                }
                #expect((newest.state == .succeeded) == (code == 0 || code == 77), "\(verb) via \(path.name): \(output)")
            }
        }
    }

    @Test func historyShowsLocalAndAgentChangesInOrder() throws {
        let agent = try AgentBed()
        let local = "\(Paths.cli) kargs -q --sysroot \(agent.bed.sysroot) --append made=locally"
        #expect(try Shell.status(local, environment: TestBed.environment).0 == 0)
        #expect(try Shell.status("\(Paths.cli) kargs -q --agent unix:\(agent.socket) --append made=by-agent").0 == 0)
        for where_ in ["--agent unix:\(agent.socket)", "--sysroot \(agent.bed.sysroot)"] {
            let lines = try Shell.run("\(Paths.cli) history \(where_)", environment: TestBed.environment).split(separator: "\n")
            #expect(lines.count == 3, "\(lines)")  // the header and two rows
            #expect(lines.dropFirst().first?.contains(#/succeeded +kargs +uid:0 /#) == true, "\(lines)")
            #expect(lines.last?.contains(#/succeeded +kargs +local:uid:0 /#) == true, "\(lines)")
        }
        let api = try agent.request("GET", "/v1/transactions", as: "reader")
        let requesters = (api.json["transactions"] as? [[String: Any]])?.compactMap { $0["requester"] as? String }
        #expect(requesters == ["uid:0", "local:uid:0"])
        #expect(try agent.bed.status.deployments[0].kernelArguments.hasSuffix("made=locally made=by-agent"))
    }

    /// The agent's GET /v1/status (idle and with a running transaction), `status --json` locally and
    /// through the agent, and the engine's own document all validate against the published schema,
    /// which is generated from openapi.yaml.
    @Test func statusFromEveryPathValidatesAgainstTheSchema() async throws {
        #expect(try Shell.status("\(Paths.packageRoot)/scripts/status-schema.py --check 2>&1").0 == 0)
        let agent = try AgentBed()
        let dir = agent.bed.fixtures
        try Shell.run("\(Paths.cli) status --json --agent unix:\(agent.socket) > \(dir)/via-socket.json")
        try Shell.run("\(Paths.cli) status --json --sysroot \(agent.bed.sysroot) > \(dir)/local.json", environment: TestBed.environment)
        try agent.request("GET", "/v1/status", as: "reader").body.write(toFile: "\(dir)/api-idle.json", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        try encoder.encode(try agent.bed.status).write(to: URL(fileURLWithPath: "\(dir)/engine.json"))
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        try await agent.bed.waitForConfigure()
        let busy = try agent.request("GET", "/v1/status", as: "reader")
        let record = try agent.request("GET", "/v1/transactions/\(id)", as: "reader").body
        let events = try agent.request("GET", "/v1/transactions/\(id)/events", as: "reader", extra: "--max-time 5").body
        #expect((busy.json["transaction"] as? [String: Any])?["id"] as? String == id, "\(record)\n\(events)\n\(agent.logText)")
        try busy.body.write(toFile: "\(dir)/api-running.json", atomically: true, encoding: .utf8)
        #expect(try agent.request("DELETE", "/v1/transactions/\(id)").status == 202)
        _ = try agent.waitForTransaction(id)
        let files = ["via-socket", "local", "api-idle", "api-running", "engine"].map { "\(dir)/\($0).json" }
        let (code, errors) = try Shell.status(
            "\(Paths.fixtures)/system/validate-json.py \(Paths.packageRoot)/openapi/status-v2.schema.json \(files.joined(separator: " ")) 2>&1")
        #expect(code == 0, "\(errors)")
        // The validator does refuse a document off the schema (the test can fail).
        try #"{"schema":"apt-layer.status/v2","sysroot":"/","deployments":[],"transaction":"an-id"}"#.write(
            toFile: "\(dir)/bad.json", atomically: true, encoding: .utf8)
        #expect(
            try Shell.status("\(Paths.fixtures)/system/validate-json.py \(Paths.packageRoot)/openapi/status-v2.schema.json \(dir)/bad.json").0 == 1)
        // Through the agent and locally, the CLI prints the same deployments.
        let viaSocket = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/via-socket.json"))) as? [String: Any]
        let local = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/local.json"))) as? [String: Any]
        #expect(viaSocket?["deployments"] as? NSArray == local?["deployments"] as? NSArray)
        #expect(viaSocket?["agent"] != nil && local?["agent"] == nil)
    }

    /// A journal that cannot be written (another process holds SQLite's write lock past the busy
    /// timeout) is the agent's fault: 500 problem+json, a log line with the request and the
    /// transaction, a counter in /metrics; nothing runs and nothing changes.
    @Test func anUnwritableJournalIs500LoggedAndCounted() throws {
        let agent = try AgentBed()
        let bed = agent.bed
        let before = try bed.status
        let path = Journal.defaultPath(sysroot: bed.sysroot)
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = [
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(15)",
            path,
        ]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { holder.terminate() }
        #expect(String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).contains("locked"))
        let reply = try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs","arguments":{"append":["x=1"]}}"#)
        #expect(reply.status == 500)
        #expect(reply.headers.lowercased().contains("content-type: application/problem+json"))
        #expect(reply.json["type"] as? String == "urn:apt-layer:problem:journal")
        let id = try #require(reply.json["transaction"] as? String)
        let log = agent.logText.split(separator: "\n").filter { $0.contains("request failed") }
        #expect(log.contains { $0.contains("/v1/transactions") && $0.contains(id) && $0.contains("POST") }, "\(agent.logText)")
        let metrics = try Shell.run("curl -sf http://127.0.0.1:\(agent.metricsPort)/metrics")
        #expect(metrics.contains("apt_layer_api_errors_total{type=\"journal\"} 1"), "\(metrics)")
        #expect(try bed.status == before)
        // A client's mistake on the same agent is still a 400, not counted as ours.
        #expect(try agent.request("POST", "/v1/transactions", body: #"{"operation":"kargs"}"#).status == 422)
        #expect(try Shell.run("curl -sf http://127.0.0.1:\(agent.metricsPort)/metrics").contains("apt_layer_api_errors_total{type=\"journal\"} 1"))
    }
}
