import Foundation
import TestSupport
import Testing

/// `Tests/Fixtures/harness/otlp-receiver.py`: parses every request with the official OTLP protobuf
/// definitions and writes one JSON line per log record; its mode simulates outages and errors.
final class OTLPReceiver: @unchecked Sendable {
    // @unchecked Sendable: the process handle is only touched by the test that owns it.
    static var python: String { "\(Paths.packageRoot)/.build/pytools/bin/python" }

    let dir: String
    let port: Int
    let controlPort: Int
    var out: String { "\(dir)/records.jsonl" }
    var url: String { "http://127.0.0.1:\(port)/v1/logs" }
    private let process = Process()

    init(directory: String, mode: String = "up") throws {
        dir = directory
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let stdout = "\(dir)/stdout"
        FileManager.default.createFile(atPath: stdout, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = ["\(Paths.fixtures)/harness/otlp-receiver.py", "--out", "\(dir)/records.jsonl", "--mode", mode, "--quiet"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdout))
        process.standardError = FileHandle.nullDevice
        try process.run()
        var ports: [String: Int] = [:]
        for _ in 0..<200 {
            let text = (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2, let n = Int(parts[1]) { ports[String(parts[0])] = n }
            }
            if ports["LISTENING"] != nil && ports["CONTROL"] != nil { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        guard let p = ports["LISTENING"], let c = ports["CONTROL"] else {
            throw Shell.Failure(command: "otlp-receiver.py", status: -1, output: (try? String(contentsOfFile: stdout, encoding: .utf8)) ?? "")
        }
        port = p
        controlPort = c
    }

    deinit {
        // SIGKILL: children of the test process inherit its blocked SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Switches the mode (`up`, `down`, `429`, `503`, `400`, …).
    func mode(_ mode: String, retryAfter: String? = nil) throws {
        let body = retryAfter.map { #"{"mode":"\#(mode)","retry_after":"\#($0)"}"# } ?? #"{"mode":"\#(mode)"}"#
        try Shell.run("curl -sf -X POST -d '\(body)' http://127.0.0.1:\(controlPort)/debug/mode")
    }

    /// `GET /debug/state`.
    func state() throws -> [String: Any] {
        let text = try Shell.run("curl -sf http://127.0.0.1:\(controlPort)/debug/state")
        return (try JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// Every record received so far.
    func records() -> [[String: Any]] {
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
    }
}

extension AgentBed {
    /// One sample of the agent's `/metrics` (0 when absent).
    func metric(_ name: String) throws -> Double {
        let text = try Shell.run("curl -sf http://127.0.0.1:\(metricsPort)/metrics")
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") || line.hasPrefix(name + "{") {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { return value }
        }
        return 0
    }

    /// Waits until `condition` holds (polling every 100 ms), else records an issue.
    @discardableResult
    func eventually(_ what: String, seconds: Double = 60, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("timed out waiting for \(what)\n\(logText.suffix(3000))")
        return false
    }
}
