import Foundation
import TestSupport
import Testing

/// Issue 26's smaller findings that need an agent of their own.
@Suite("reliability, smaller findings", .asRoot, .offPool)
struct ReliabilitySmallerTests {
    /// A directory where the journal file should be is a start a restart cannot fix: the agent
    /// exits at once with 78, which the unit's `RestartPreventExitStatus=` names (no crash loop).
    @Test func aDirectoryForTheJournalIsAPermanentStartFailure() throws {
        let agent = try AgentBed()
        agent.stop()
        let journal = "\(agent.bed.fixtures)/journal-dir"
        try Shell.run("mkdir -p \(journal)")
        try "journal: \(journal)\n".write(toFile: "\(agent.bed.fixtures)/journal.yaml", atomically: true, encoding: .utf8)
        let (code, output) = try Shell.status(
            "cat \(agent.configPath) \(agent.bed.fixtures)/journal.yaml > \(agent.bed.fixtures)/dir.yaml && \(Paths.agent) --config \(agent.bed.fixtures)/dir.yaml --drop-in /nonexistent 2>&1",
            environment: TestBed.environment)
        #expect(code == 78, "\(output)")
        #expect(output.contains("is a directory"), "\(output)")
        let unit = try String(contentsOfFile: "\(Paths.packageRoot)/systemd/apt-layerd.service", encoding: .utf8)
        #expect(unit.contains("RestartPreventExitStatus=78"))
    }

    /// A local user may install only files it could read itself; a root-only file and a missing
    /// one get the same words, and the agent's private copy is never named.
    @Test func aLocalUserCannotProbeRootOnlyPaths() throws {
        let agent = try AgentBed()
        agent.stop()
        var config = try String(contentsOfFile: agent.configPath, encoding: .utf8)
        config = config.replacingOccurrences(of: "roles: { reader: reader,", with: "roles: { \"uid:65534\": operator, reader: reader,")
        try config.write(toFile: agent.configPath, atomically: true, encoding: .utf8)
        try agent.start()
        defer { agent.stop() }
        let public_ = try Shell.run("mktemp -d /tmp/apt-layer-public.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Shell.run("rm -rf \(public_)") }
        let secret = "\(agent.bed.fixtures)/secret"
        try Shell.run(
            """
            chmod 0666 \(agent.socket); chmod 0755 \(public_); chmod o+x \(agent.bed.fixtures)/.. \(agent.bed.fixtures)
            cp \(agent.bed.debs)/fixture-local-1.0.deb \(public_)/ && chmod 0644 \(public_)/fixture-local-1.0.deb
            mkdir -p \(secret) && chmod 0700 \(secret) && cp \(agent.bed.debs)/fixture-local-1.0.deb \(secret)/
            """)
        func install(_ path: String) throws -> String {
            try Shell.run(
                "setpriv --reuid=65534 --regid=65534 --clear-groups curl -s --unix-socket \(agent.socket) -H 'content-type: application/json' "
                    + "-d '{\"operation\":\"install\",\"arguments\":{\"packages\":[\"\(path)\"]}}' http://localhost/v1/transactions")
        }
        let hidden = try install("\(secret)/fixture-local-1.0.deb")
        let missing = try install("\(secret)/missing-1.0.deb")
        func detail(_ body: String) -> String {
            ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any])?["detail"] as? String ?? body
        }
        #expect(detail(hidden).contains("no such file, or not readable by that user"), "\(hidden)")
        #expect(
            detail(hidden).replacingOccurrences(of: "fixture-local-1.0", with: "X")
                == detail(missing).replacingOccurrences(of: "missing-1.0", with: "X"),
            "\(hidden) vs \(missing)")
        #expect(!hidden.contains(".incoming"))
        // A file the user can read is accepted and installed.
        let readable = try install("\(public_)/fixture-local-1.0.deb")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(readable.utf8)) as? [String: Any])?["id"] as? String, "\(readable)")
        #expect(try agent.waitForTransaction(id)["state"] as? String == "succeeded")
    }
}

/// A query parameter that is not what the document says is named as a parameter, not as the body.
@Suite("bad query parameters", .asRoot, .offPool)
struct BadQueryParameterTests {
    @Test func aGarbageSinceNamesTheParameter() throws {
        let agent = try AgentBed()
        defer { agent.stop() }
        let reply = try agent.request("GET", "/v1/transactions?since=garbage", as: "reader")
        #expect(reply.status == 400, "\(reply.body)")
        #expect(reply.json["pointer"] as? String == "/query/since", "\(reply.body)")
        #expect((reply.json["detail"] as? String)?.contains("RFC 3339") == true, "\(reply.body)")
        #expect(!reply.body.contains("not valid JSON"), "\(reply.body)")
    }
}
