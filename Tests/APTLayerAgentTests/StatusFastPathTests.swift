import Foundation
import TestSupport
import Testing

/// The status fast path (issue 12): `GET /v1/status` and `/v1/deployments` from cached bytes on a
/// connection whose caller is known. It must answer what the generated handler answers — the same
/// bytes apart from the uptime's digits — follow every change of the sysroot at once (inotify), also
/// one made outside the agent, and carry the running transaction.
@Suite("status from bytes", .asRoot, .offPool)
struct StatusFastPathTests {
    /// Two GETs on one keep-alive connection: the first resolves the caller through the middleware,
    /// the second is answered by the fast path (when it is on). Returns both bodies.
    static func twice(_ agent: AgentBed, _ path: String, head: Bool = false) throws -> (String, String) {
        let dir = agent.bed.fixtures
        let url = "https://127.0.0.1:\(agent.port)\(path)"
        try Shell.run(
            "curl -sS \(head ? "-I" : "") --cacert \(agent.pki)/ca.crt --cert \(agent.pki)/reader.crt --key \(agent.pki)/reader.key \(url) -o \(dir)/first.out \(url) -o \(dir)/second.out"
        )
        return (
            try String(contentsOfFile: "\(dir)/first.out", encoding: .utf8), try String(contentsOfFile: "\(dir)/second.out", encoding: .utf8)
        )
    }

    /// The uptime's digits are the only part allowed to differ.
    static func normalized(_ body: String) -> String { body.replacing(#/"uptimeSeconds":[0-9.e+-]+/#, with: #""uptimeSeconds":0"#) }

    static func uptime(_ body: String) -> String? { body.firstMatch(of: #/"uptimeSeconds":([0-9.e+-]+)/#).map { String($0.output.1) } }

    @Test func fastBytesEqualTheGeneratedHandlersAndFollowTheSysroot() async throws {
        let agent = try AgentBed()
        try Shell.run("\(Paths.cli) install -q --agent unix:\(agent.socket) fixture-app")
        let (slow, fast) = try Self.twice(agent, "/v1/status")
        // The second answer came from the fast path: its uptime has the fast path's six decimals.
        #expect(Self.uptime(fast)?.range(of: #"^\d+\.\d{6}$"#, options: .regularExpression) != nil, "\(fast)")
        #expect(Self.normalized(fast) == Self.normalized(slow), "\(slow)\n\(fast)")
        let (slowList, fastList) = try Self.twice(agent, "/v1/deployments")
        #expect(fastList == slowList && fastList.hasPrefix(#"{"deployments":[{"#), "\(fastList)")
        let (_, head) = try Self.twice(agent, "/v1/status", head: true)
        #expect(head.lowercased().contains("content-length: \(fast.utf8.count)"), "\(head)")

        // A change made outside the agent (a local CLI run) shows on the very next fast answer.
        try Shell.run("\(Paths.cli) kargs -q --local --sysroot \(agent.bed.sysroot) --append seen=now", environment: TestBed.environment)
        let (_, afterKargs) = try Self.twice(agent, "/v1/status")
        #expect(afterKargs.contains("seen=now"), "\(afterKargs)")
        try Shell.run("\(Paths.cli) rollback -q --local --sysroot \(agent.bed.sysroot)", environment: TestBed.environment)
        let (slowBack, fastBack) = try Self.twice(agent, "/v1/status")
        // The rollback made the deployment without the argument the default; the other one keeps it.
        #expect(Self.normalized(fastBack) == Self.normalized(slowBack), "\(slowBack)\n\(fastBack)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(fastBack.utf8)) as? [String: Any])
        let first = try #require((doc["deployments"] as? [[String: Any]])?.first)
        #expect((first["kernelArguments"] as? String)?.contains("seen=now") == false, "\(first)")

        // A running transaction is spliced in, as the generated handler shows it.
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        try await agent.bed.waitForConfigure()
        let (slowBusy, fastBusy) = try Self.twice(agent, "/v1/status")
        #expect(fastBusy.contains(#""transaction":{"#) && fastBusy.contains(id), "\(fastBusy)")
        #expect(Self.normalized(fastBusy) == Self.normalized(slowBusy), "\(slowBusy)\n\(fastBusy)")
        #expect(try agent.request("DELETE", "/v1/transactions/\(id)").status == 202)
        _ = try agent.waitForTransaction(id)
        let (_, idle) = try Self.twice(agent, "/v1/status")
        #expect(!idle.contains(#""transaction":"#), "\(idle)")

        // With the fast path off, the generated handler answers both requests: the same document.
        agent.stop()
        try (try String(contentsOfFile: agent.configPath, encoding: .utf8) + "\nstatus-fast-path: false\n").write(
            toFile: agent.configPath, atomically: true, encoding: .utf8)
        try agent.start()
        let (_, reference) = try Self.twice(agent, "/v1/status")
        #expect(Self.uptime(reference)?.range(of: #"^\d+\.\d{6}$"#, options: .regularExpression) == nil, "\(reference)")
        #expect(Self.normalized(reference) == Self.normalized(idle), "\(reference)\n\(idle)")
    }
}
