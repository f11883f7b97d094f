import Foundation
import TestSupport
import Testing

/// A running `apt-layerd` (the real binary) on a TestBed sysroot, with a throwaway PKI, reached over
/// real mTLS with curl.
final class AgentBed: @unchecked Sendable {
    // @unchecked Sendable: the process handle is only touched by the test that owns the bed.
    let bed: TestBed
    let pki: String
    let state: String
    let port: Int
    let metricsPort: Int
    let configPath: String
    var socket: String { "\(bed.fixtures)/agent.sock" }
    private(set) var process: Process?
    private(set) var log: String

    init(bed: TestBed? = nil, extraConfig: String = "", environment: [String: String] = [:]) throws {
        self.bed = try bed ?? TestBed()
        pki = "\(self.bed.fixtures)/pki"
        state = "\(self.bed.fixtures)/state"
        log = "\(self.bed.fixtures)/agent.log"
        port = try Self.freePort()
        metricsPort = try Self.freePort()
        configPath = "\(self.bed.fixtures)/agent.yaml"
        if !FileManager.default.fileExists(atPath: "\(pki)/ca.crt") {
            try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        }
        try """
        listen: "127.0.0.1:\(port)"
        metrics-listen: "127.0.0.1:\(metricsPort)"
        tls: { certificate: \(pki)/server.crt, key: \(pki)/server.key, client-ca: \(pki)/ca.crt }
        roles: { reader: reader, operator: operator, admin: admin }
        sysroot: \(self.bed.sysroot)
        os: debian
        state-directory: \(state)
        socket: \(self.bed.fixtures)/agent.sock
        \(extraConfig)
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        try start(environment: environment)
    }

    /// A loopback TCP port nobody listens on now (the kernel picks it), below the ephemeral range
    /// only by chance: asking the kernel avoids collisions between beds running in parallel.
    static func freePort() throws -> Int {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Shell.Failure(command: "socket", status: errno, output: "") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Shell.Failure(command: "bind", status: errno, output: "") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts the agent and waits until its health endpoint answers.
    func start(environment: [String: String] = [:]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.agent)
        p.arguments = ["--config", configPath, "--drop-in", "\(bed.fixtures)/agent.d"]
        var env = ProcessInfo.processInfo.environment
        env["OSTREE_SYSROOT_DEBUG"] = "mutable-deployments"
        env.merge(environment) { _, n in n }
        p.environment = env
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        process = p
        for _ in 0..<300 {
            if try Shell.status("curl -sf http://127.0.0.1:\(metricsPort)/v1/healthz").0 == 0 { return }
            if !p.isRunning { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Shell.Failure(command: "apt-layerd", status: p.isRunning ? -1 : p.terminationStatus, output: logText)
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Stops the agent with SIGTERM (or SIGKILL) and waits.
    func stop(kill: Bool = false) {
        guard let p = process, p.isRunning else { return }
        if kill { Glibc.kill(p.processIdentifier, SIGKILL) } else { p.terminate() }
        p.waitUntilExit()
    }

    /// Waits for the agent to exit on its own (e.g. at a fault point).
    func waitForExit(seconds: Double = 60) -> Int32? {
        guard let p = process else { return nil }
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return p.isRunning ? nil : p.terminationStatus
    }

    deinit { stop() }

    struct Reply {
        var status: Int
        var body: String
        var headers: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    /// A request over mTLS as `identity` (nil = no client certificate).
    func request(_ method: String, _ path: String, as identity: String? = "operator", body: String? = nil, extra: String = "") throws -> Reply {
        let certs = identity.map { "--cert \(pki)/\($0).crt --key \(pki)/\($0).key" } ?? ""
        let data = body.map { "-H 'content-type: application/json' --data-binary \(Shell.quote($0))" } ?? ""
        let headers = "\(bed.fixtures)/headers-\(UUID().uuidString)"
        let (code, output) = try Shell.status(
            "curl -sS -X \(method) --cacert \(pki)/ca.crt \(certs) \(data) \(extra) -D \(headers) -w '\\n%{http_code}' 'https://127.0.0.1:\(port)\(path)'"
        )
        let headerText = (try? String(contentsOfFile: headers, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: headers)
        guard code == 0 else { return Reply(status: -Int(code), body: output, headers: headerText) }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return Reply(status: Int(lines.last ?? "") ?? -1, body: lines.dropLast().joined(separator: "\n"), headers: headerText)
    }

    /// Polls a transaction until it has finished.
    func waitForTransaction(_ id: String, seconds: Double = 120) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let reply = try request("GET", "/v1/transactions/\(id)", as: "reader")
            let state = reply.json["state"] as? String ?? ""
            if ["succeeded", "failed", "cancelled", "interrupted"].contains(state) { return reply.json }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("transaction \(id) did not finish")
        return [:]
    }
}
