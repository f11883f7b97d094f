import Foundation
import TestSupport
import Testing

/// Issue 11's findings, each as a check that would have caught it: read verbs through the agent
/// with the same output and exit code as locally, `--wait`, one-line transport errors on every
/// path, idle `cancel`, `--version`, the served OpenAPI document, problem documents that name
/// the field and the allowed values, 404/405, and every problem type documented.
@Suite("CLI habits and API discovery", .asRoot, .offPool)
struct CLIHabitsTests {
    /// The three ways the CLI reaches a host.
    static func paths(_ agent: AgentBed) -> [(name: String, arguments: String)] {
        [
            ("local", "--sysroot \(agent.bed.sysroot)"), ("socket", "--agent unix:\(agent.socket)"),
            (
                "mtls",
                "--agent https://127.0.0.1:\(agent.port) --cert \(agent.pki)/admin.crt --key \(agent.pki)/admin.key --ca \(agent.pki)/ca.crt"
            ),
        ]
    }

    @Test func readVerbsAnswerTheSameOnEveryPath() throws {
        let agent = try AgentBed()
        // A change through the agent prints its diff against the deployment it replaces, and the hint.
        let installed = try Shell.run("\(Paths.cli) install -q --agent unix:\(agent.socket) fixture-app")
        #expect(installed.hasPrefix("Added:\n  fixture-app 1.0 all\n  fixture-lib 1.0 all\nDeployed "), "\(installed)")
        #expect(installed.hasSuffix("Changes queued for next boot. Run \"systemctl reboot\" to start a reboot.\n"), "\(installed)")
        try Shell.run("\(Paths.cli) kargs -q --agent unix:\(agent.socket) --append habit=1")
        let verbs = ["kargs", "db list", "db list 1", "db diff", "db diff 1 0", "db diff 0 1 --json", "status", "status -v", "status -b", "cancel"]
        for verb in verbs {
            var outcomes: [String: (Int32, String)] = [:]
            for path in Self.paths(agent) {
                outcomes[path.name] = try Shell.status("\(Paths.cli) \(verb) \(path.arguments) 2>&1", environment: TestBed.environment)
            }
            #expect(Set(outcomes.values.map(\.0)) == [0], "\(verb): \(outcomes)")
            // status shows the agent's version with -v only through the agent; everything else is identical.
            let texts = outcomes.values.map { $0.1.replacing(#/Agent: apt-layerd .*\n/#, with: "") }
            #expect(Set(texts).count == 1, "\(verb): \(outcomes)")
        }
        // history pages: a header, the rows, and a hint when the page is full.
        let page = try Shell.run("\(Paths.cli) history --limit 1 --agent unix:\(agent.socket)").split(separator: "\n")
        #expect(page.count == 3 && page[2].hasPrefix("(the 1 newest; --limit N for more"), "\(page)")
        let kargs = try Shell.run("\(Paths.cli) kargs --agent unix:\(agent.socket)")
        #expect(kargs.hasSuffix("habit=1\n") && !kargs.contains("ostree="), "\(kargs)")
        let cancel = try Shell.status("\(Paths.cli) cancel --agent unix:\(agent.socket)")
        #expect(cancel == (0, "No transaction is running.\n"))
        let status = try Shell.run("\(Paths.cli) status --agent unix:\(agent.socket)")
        #expect(status.hasPrefix("State: idle\nDeployments:\n"), "\(status)")
        #expect(status.contains("Diff: ") == false || status.contains("                Diff: "), "\(status)")
        for binary in [Paths.cli, Paths.agent] {
            #expect(try Shell.run("\(binary) --version").range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil)
        }
    }

    @Test func waitQueuesBehindARunningTransactionThroughTheAgent() async throws {
        let agent = try AgentBed()
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        try await agent.bed.waitForConfigure()
        let refused = try Shell.status("\(Paths.cli) install -q --agent unix:\(agent.socket) fixture-conf 2>&1")
        #expect(refused.0 == 1)
        #expect(refused.1 == "error: another transaction (\(id)) is running; pass --wait to queue behind it, or cancel it with apt-layer cancel\n")
        // status names the running transaction, the same on every path (the journal is one file).
        var busy: Set<String> = []
        for path in Self.paths(agent) { busy.insert(try Shell.run("\(Paths.cli) status \(path.arguments)", environment: TestBed.environment)) }
        #expect(busy.count == 1, "\(busy)")
        #expect(busy.first?.hasPrefix("State: busy\nTransaction: install fixture-slow (\(id), running, by operator since ") == true, "\(busy)")
        let waited = try Shell.status("\(Paths.cli) install -q --wait --agent unix:\(agent.socket) fixture-conf 2>&1")
        #expect(waited.0 == 0, "\(waited.1)")
        #expect((try agent.waitForTransaction(id))["state"] as? String == "succeeded")
        #expect(try agent.bed.packageNames().contains("fixture-conf"))
    }

    @Test func transportFailuresAreOneLineNamingTheFix() throws {
        let agent = try AgentBed()
        let https = "https://127.0.0.1:\(agent.port)"
        let cases: [(String, String)] = [
            ("--agent unix:/run/no-such-dir/agent.sock", "error: no agent socket at /run/no-such-dir/agent.sock: is apt-layerd running?"),
            (
                "--agent \(https) --cert \(agent.pki)/admin.crt --key \(agent.pki)/admin.key",
                "error: the agent's certificate at \(https) is not trusted: pass --ca"
            ),
            ("--agent \(https) --ca \(agent.pki)/ca.crt", "error: the agent at \(https) refused the TLS handshake: pass --cert and --key"),
            (
                "--agent https://127.0.0.1:\(try AgentBed.freePort()) --ca \(agent.pki)/ca.crt",
                "error: cannot connect to the agent at https://127.0.0.1:"
            ),
            ("--agent https://127.0.0.1:\(agent.port) --ca /no/such/ca.crt", "error: --ca /no/such/ca.crt: no such readable file"),
            ("--agent http://127.0.0.1:\(agent.port)", "error: --agent must be https://HOST:PORT or unix:PATH"),
        ]
        for (arguments, prefix) in cases {
            for verb in ["status", "install fixture-conf", "history"] {
                let (code, output) = try Shell.status("\(Paths.cli) \(verb) \(arguments) 2>&1")
                #expect(code == 1, "\(verb) \(arguments): \(output)")
                #expect(output.hasPrefix(prefix) && output.split(separator: "\n").count == 1, "\(verb) \(arguments): \(output)")
            }
        }
        #expect(try agent.bed.packageNames().contains("fixture-conf") == false)
    }

    @Test func problemDocumentsNameTheFieldAndTheAllowedValues() throws {
        let agent = try AgentBed()
        let operations = [
            "install", "uninstall", "override-remove", "override-replace", "override-reset", "upgrade", "deploy", "rebase", "rollback", "cleanup",
            "kargs", "pin",
            "unpin", "finalize", "apply-live",
        ]
        let cases: [(String, String?, Int, String, [String]?)] = [
            ("/v1/transactions", #"{"operation":"instal"}"#, 400, "/operation", operations),
            ("/v1/transactions", #"{"operation":"install","arguments":{"packages":"x"}}"#, 400, "/arguments/packages", nil),
            ("/v1/transactions", #"{"operation":"uninstall","arguments":{"pakages":["x"]}}"#, 400, "/arguments/pakages", nil),
            ("/v1/transactions", #"{"arguments":{}}"#, 400, "/operation", nil),
            ("/v1/transactions?state=bogus", nil, 400, "/query/state", ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]),
            ("/v1/transactions?limit=ten", nil, 400, "/query/limit", nil),
            ("/v1/deployments/x/packages", nil, 400, "/path/index", nil),
        ]
        for (path, body, status, pointer, allowed) in cases {
            let reply = try agent.request(body == nil ? "GET" : "POST", path, as: body == nil ? "reader" : "operator", body: body)
            #expect(reply.status == status, "\(path) \(body ?? ""): \(reply.body)")
            #expect(reply.json["type"] as? String == "urn:apt-layer:problem:bad-request")
            #expect(reply.json["pointer"] as? String == pointer, "\(path) \(body ?? ""): \(reply.body)")
            if let allowed { #expect(reply.json["allowed"] as? [String] == allowed, "\(reply.body)") }
            let detail = reply.json["detail"] as? String ?? ""
            #expect(detail.hasPrefix(pointer) && !detail.contains("DecodingError") && !detail.contains("CodingKeys"), "\(detail)")
        }
        // The unknown member's problem lists the members the object takes.
        let unknown = try agent.request("POST", "/v1/transactions", body: #"{"operation":"uninstall","arguments":{"pakages":["x"]}}"#)
        #expect((unknown.json["allowed"] as? [String])?.contains("packages") == true, "\(unknown.body)")
        // 404 for a path or a deployment that is not there, 405 with Allow for a method a path does not take.
        let nowhere = try agent.request("GET", "/v1/nothing", as: "reader")
        #expect(nowhere.status == 404 && nowhere.json["type"] as? String == "urn:apt-layer:problem:not-found", "\(nowhere.body)")
        let missing = try agent.request("GET", "/v1/deployments/9/packages", as: "reader")
        #expect(missing.status == 404 && missing.json["type"] as? String == "urn:apt-layer:problem:not-found")
        let method = try agent.request("POST", "/v1/status", as: "reader", body: "{}")
        #expect(method.status == 405 && method.headers.lowercased().contains("allow: get, head"), "\(method.headers)")
        #expect(try agent.bed.status.deployments.count == 1)
    }

    @Test func theAgentServesItsOpenAPIDocument() throws {
        let agent = try AgentBed()
        let reply = try agent.request("GET", "/v1/openapi.yaml", as: "reader")
        #expect(reply.status == 200)
        #expect(reply.headers.lowercased().contains("content-type: application/yaml"), "\(reply.headers)")
        let saved = "\(agent.bed.fixtures)/served.yaml"
        try Shell.run(
            "curl -sS --cacert \(agent.pki)/ca.crt --cert \(agent.pki)/reader.crt --key \(agent.pki)/reader.key -o \(saved) https://127.0.0.1:\(agent.port)/v1/openapi.yaml"
        )
        #expect(try Shell.status("cmp \(saved) \(Paths.packageRoot)/openapi/openapi.yaml").0 == 0)
        #expect(try agent.request("GET", "/v1/openapi.yaml", as: nil).status != 200)  // a certificate is still needed
    }

}
