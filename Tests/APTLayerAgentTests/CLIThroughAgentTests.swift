import Foundation
import TestSupport
import Testing

/// `apt-layer` verbs started through the agent: progress streamed, exit codes kept, Ctrl-C cancels.
@Suite("apt-layer through apt-layerd", .asRoot, .offPool)
struct CLIThroughAgentTests {
    @Test func verbsRunThroughTheAgent() throws {
        let agent = try AgentBed()
        let cli = "\(Paths.cli) --agent unix:\(agent.socket)"
        let (code, output) = try Shell.status("\(Paths.cli) install --agent unix:\(agent.socket) fixture-app 2>&1")
        #expect(code == 0, "\(output)")
        #expect(output.contains("Resolving and installing packages"))
        #expect(output.contains("Deployed"))
        #expect(try agent.bed.packageNames().contains("fixture-app"))
        let again = try Shell.status("\(Paths.cli) install --agent unix:\(agent.socket) --idempotent fixture-app 2>&1")
        #expect(again.0 == 0 && again.1.contains("No change."), "\(again.1)")
        #expect(try Shell.status("\(Paths.cli) install --agent unix:\(agent.socket) --unchanged-exit-77 --idempotent fixture-app 2>&1").0 == 77)
        let failing = try Shell.status("\(Paths.cli) install -q --agent unix:\(agent.socket) fixture-failing 2>&1 >/dev/null")
        #expect(failing.0 == 1)
        #expect(failing.1.hasPrefix("error: ") && failing.1.contains("post-installation script"))
        let status = try Shell.run("\(Paths.cli) status --agent unix:\(agent.socket) --json")
        #expect(status.contains("\"requestedPackages\" : [\n        \"fixture-app\""))
        let history = try Shell.run("\(Paths.cli) history --agent unix:\(agent.socket)")
        let lines = history.split(separator: "\n")
        #expect(lines.count == 1 + 4, "\(history)")  // the header, then four transactions
        #expect(
            lines.first?.hasPrefix("STARTED ") == true && lines.first?.contains(" CHANGE ") == true && lines.first?.hasSuffix(" ID") == true,
            "\(history)")
        #expect(history.contains("failed") && history.contains("succeeded") && history.contains("2 added"), "\(history)")
        let id = String(try #require(lines.dropFirst().first?.split(separator: " ").last))
        #expect(try Shell.run("\(Paths.cli) transaction show --agent unix:\(agent.socket) \(id)").contains("\"state\" : \"failed\""))
        _ = cli
    }

    @Test func ctrlCCancelsTheAgentTransaction() throws {
        let agent = try AgentBed()
        let before = try agent.bed.status
        let (code, output) = try Shell.status(
            """
            \(Paths.cli) install --agent unix:\(agent.socket) fixture-slow 2>&1 & pid=$!
            for i in $(seq 200); do pgrep -f -- \(agent.bed.configurePattern) >/dev/null && break; sleep 0.1; done
            kill -INT $pid; wait $pid
            """)
        #expect(code == 1)
        #expect(output.contains("Cancelling"))
        #expect(output.contains("error: cancelled by uid:0"))
        #expect(try agent.bed.status == before)
        #expect(agent.bed.leftovers.isEmpty)
    }

    @Test func cancelVerbAndMTLSEndpoint() throws {
        let agent = try AgentBed()
        let mtls = "--agent https://127.0.0.1:\(agent.port) --cert \(agent.pki)/operator.crt --key \(agent.pki)/operator.key --ca \(agent.pki)/ca.crt"
        let (code, output) = try Shell.status("\(Paths.cli) kargs \(mtls) --append via=mtls 2>&1")
        #expect(code == 0, "\(output)")
        #expect(try agent.bed.status.deployments[0].kernelArguments.contains("via=mtls"))
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        let cancel = try Shell.status("\(Paths.cli) cancel --agent unix:\(agent.socket) 2>&1")
        #expect(cancel.0 == 0 && cancel.1.contains(id))
        #expect(try agent.waitForTransaction(id)["state"] as? String == "cancelled")
        // Nothing running: rpm-ostree's habit, exit 0.
        #expect(try Shell.status("\(Paths.cli) cancel --agent unix:\(agent.socket) 2>&1") == (0, "No transaction is running.\n"))
    }
}
