import Foundation

/// A real docker-registry with TLS on loopback, started for one test (Tests/Fixtures/registry),
/// stopped (and its CA removed from certs.d) at the end.
public final class TestRegistry: @unchecked Sendable {
    // @unchecked Sendable: used by one test; the process is stopped in stop() or deinit.
    public let dir: String
    public let port: String
    let process = Process()
    public var host: String { "127.0.0.1:\(port)" }
    public var log: String { "\(dir)/registry.log" }

    public init(_ bed: TestBed) throws {
        dir = "\(bed.fixtures)/registry"
        port = try Self.freePort()
        try Shell.run("\(Paths.fixtures)/registry/start-registry.sh \(dir) \(port) && : > \(dir)/registry.log")
        // A Process, not a shell: a server left running would hold the shell runner's pipe open.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker-registry")
        process.arguments = ["serve", "\(dir)/config.yml"]
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        for _ in 0..<200 where try Shell.status("curl -sf --cacert \(dir)/ca.crt https://\(host)/v2/ -o /dev/null").0 != 0 {
            usleep(50_000)
        }
    }

    /// Stops the registry (SIGKILL: children of the test process start with SIGTERM blocked).
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        _ = try? Shell.run("\(Paths.fixtures)/registry/stop-registry.sh \(dir) \(port)")
    }
    deinit { stop() }

    /// Layer blobs fetched (GET …/blobs/ answered 200) since the log was last cleared.
    public func fetchedBlobs() throws -> [String] {
        try Shell.run(
            "grep -a -o '\"GET /v2/[^ ]*/blobs/sha256:[0-9a-f]* HTTP/1.1\" 200' \(log) | sed 's/.*sha256:\\([0-9a-f]*\\).*/\\1/' || true"
        )
        .split(separator: "\n").map(String.init)
    }

    public func clearLog() throws { try Shell.run(": > \(log)") }

    /// A loopback TCP port nobody listens on now (the kernel picks it).
    public static func freePort() throws -> String {
        try Shell.run(#"python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'"#)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
