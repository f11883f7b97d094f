import Foundation
import TestSupport
import Testing

/// sd_notify behaviour, observed through a real NOTIFY_SOCKET, and graceful stop.
@Suite("apt-layerd and systemd", .asRoot, .offPool)
struct SystemdTests {
    @Test func readyAfterListenersWatchdogAndStopping() throws {
        let agent = try AgentBed()
        agent.stop()
        let script = """
            import os, socket, subprocess, sys, time, urllib.request
            path = sys.argv[1]; cmd = sys.argv[2:]
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(path); s.settimeout(10)
            env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000")
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seen = []
            while "READY=1" not in seen:
                seen += s.recv(4096).decode().split("\\n")
            port = [a for a in cmd if a.startswith("--metrics-listen=")][0].split(":")[-1]
            print("healthz-at-ready", urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/healthz").status)
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try: seen += s.recv(4096).decode().split("\\n")
                except socket.timeout: break
            p.terminate()
            s.settimeout(10)
            while "STOPPING=1" not in seen:
                seen += s.recv(4096).decode().split("\\n")
            print("exit", p.wait(10))
            for m in seen: print("msg", m)
            """
        try script.write(toFile: "\(agent.bed.fixtures)/notify.py", atomically: true, encoding: .utf8)
        let output = try Shell.run(
            "python3 \(agent.bed.fixtures)/notify.py \(agent.bed.fixtures)/notify.sock \(Paths.agent) --config \(agent.configPath) --drop-in /nonexistent --metrics-listen=127.0.0.1:\(agent.metricsPort)",
            environment: TestBed.environment)
        #expect(output.contains("healthz-at-ready 200"))
        #expect(output.contains("msg READY=1"))
        #expect(output.contains("msg STATUS=Idle"))
        #expect(output.components(separatedBy: "msg WATCHDOG=1").count >= 3)
        #expect(output.contains("msg STOPPING=1"))
        #expect(output.contains("exit 0"))
    }

    @Test func sigtermCancelsTheRunningTransactionAndJournalsIt() async throws {
        let agent = try AgentBed()
        let before = try agent.bed.status
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        try await agent.bed.waitForConfigure()
        agent.stop()
        #expect(try agent.bed.status == before)
        #expect(agent.bed.leftovers.isEmpty)
        try agent.start()
        let record = try agent.request("GET", "/v1/transactions/\(id)", as: "reader").json
        #expect(record["state"] as? String == "cancelled")
        #expect(record["error"] as? String == "the agent is stopping")
    }

    @Test func operatorCannotCancelAnotherRequestersTransaction() throws {
        let agent = try AgentBed(extraConfig: "")
        try Shell.run(
            "sed -i 's/roles: { reader: reader, operator: operator, admin: admin }/roles: { reader: reader, operator: operator, admin: admin, stranger: operator }/' \(agent.configPath)"
        )
        agent.stop()
        try agent.start()
        let posted = try agent.request(
            "POST", "/v1/transactions", as: "stranger", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        let refused = try agent.request("DELETE", "/v1/transactions/\(id)", as: "operator")
        #expect(refused.status == 403)
        #expect(try agent.request("DELETE", "/v1/transactions/\(id)", as: "admin").status == 202)
        #expect(try agent.waitForTransaction(id)["state"] as? String == "cancelled")
    }
}
