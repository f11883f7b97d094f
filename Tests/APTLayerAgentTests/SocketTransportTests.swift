import Foundation
import TestSupport
import Testing

/// The CLI's own HTTP/1.1 transport on the agent's local socket (UnixSocketTransport): each way
/// the other end can fail is one line naming the agent and the fix, and a CLI following a
/// transaction whose agent dies says so and where to look.
@Suite("the CLI's socket transport", .asRoot, .offPool)
struct SocketTransportTests {
    /// A Unix socket at `path` that answers each of `answers` connections with the bytes given
    /// (after reading the request's head), then closes; nil: accepts and closes at once.
    static func fakeAgent(at path: String, answers: [String?]) throws -> Process {
        let script = """
            import socket, sys, json
            answers = json.loads(sys.argv[2])
            s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
            print("ready", flush=True)
            for answer in answers:
                c, _ = s.accept()
                if answer is not None:
                    head = b""
                    while b"\\r\\n\\r\\n" not in head:
                        got = c.recv(4096)
                        if not got: break
                        head += got
                    c.sendall(answer.encode())
                c.close()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let json = String(decoding: try JSONSerialization.data(withJSONObject: answers.map { $0 ?? NSNull() as Any }), as: UTF8.self)
        p.arguments = ["-c", script, path, json]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        _ = out.fileHandleForReading.availableData  // "ready": bound and listening
        return p
    }

    @Test func failuresBelowHTTPAreOneLine() throws {
        let dir = try Shell.run("mktemp -d /tmp/apt-layer-socket.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A socket file nobody listens on (an agent that died without removing it).
        let stale = "\(dir)/stale.sock"
        try Shell.run("python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \(stale)")
        var (code, output) = try Shell.status("\(Paths.cli) status --agent unix:\(stale) 2>&1")
        #expect(
            code == 1
                && output == "error: cannot connect to the agent at unix:\(stale): connection refused (is apt-layerd running and listening there?)\n",
            "\(output)")

        let live = "\(dir)/agent.sock"
        let fake = try Self.fakeAgent(
            at: live,
            answers: [
                nil,  // closes without answering
                "hello\r\n\r\n",  // not HTTP
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"deploy",  // ends early
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",  // bad chunk size
            ])
        defer { fake.terminate() }
        let expected = [
            "error: the agent at unix:\(live) closed the connection (did it restart?)\n",
            "error: cannot reach the agent at unix:\(live): not an HTTP answer: status line hello\n",
            "error: the agent at unix:\(live) closed the connection (did it restart?)\n",
            "error: cannot reach the agent at unix:\(live): not an HTTP answer: chunk size zz\n",
        ]
        for line in expected {
            (code, output) = try Shell.status("\(Paths.cli) status --agent unix:\(live) 2>&1")
            #expect(code == 1 && output == line, "\(output)")
        }
    }

    @Test func anAgentThatDiesMidTransactionIsNamed() throws {
        let agent = try AgentBed()
        let pid = try #require(agent.process?.processIdentifier)
        let (code, output) = try Shell.status(
            """
            \(Paths.cli) install --agent unix:\(agent.socket) fixture-slow 2>&1 & pid=$!
            for i in $(seq 200); do pgrep -f -- \(agent.bed.configurePattern) >/dev/null && break; sleep 0.1; done
            kill -KILL \(pid); wait $pid
            """)
        #expect(code == 1)
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        // Killed while the events stream (closed) or, rarely, between the POST and the stream (refused).
        #expect(
            last.hasPrefix("error: lost the agent while following transaction ")
                && (last.contains("(the agent at unix:\(agent.socket) closed the connection (did it restart?))")
                    || last.contains("(cannot connect to the agent at unix:\(agent.socket): connection refused"))
                && last.hasSuffix("it may have finished: see apt-layer transaction show \(last.split(separator: " ")[7])"),
            "\(output)")
    }
}
