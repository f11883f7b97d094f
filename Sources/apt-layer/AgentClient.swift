import APTLayerEngine
import ArgumentParser
import Foundation
import Glibc

/// Talks to apt-layerd over its local Unix socket or mTLS, through curl (which carries the client
/// certificate and the Unix socket transport). Progress is read from the transaction's event stream.
struct AgentClient {
    static let defaultSocket = "/run/apt-layer/agent.sock"

    let endpoint: String
    let cert: String?
    let key: String?
    let ca: String?
    let quiet: Bool

    /// curl arguments that reach `path` on the agent.
    func curlArguments(_ path: String) -> [String] {
        if endpoint.hasPrefix("unix:") { return ["--unix-socket", String(endpoint.dropFirst(5)), "http://localhost\(path)"] }
        var args: [String] = []
        if let ca { args += ["--cacert", ca] }
        if let cert { args += ["--cert", cert] }
        if let key { args += ["--key", key] }
        return args + [endpoint.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path]
    }

    struct Reply {
        var status: Int
        var body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var problem: String {
            let j = json
            return (j["detail"] as? String) ?? (j["title"] as? String) ?? String(decoding: body, as: UTF8.self)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// One request; the reply's status and body.
    func request(_ method: String, _ path: String, json: [String: Any]? = nil) throws -> Reply {
        var args = ["-sS", "-X", method, "-w", "\n%{http_code}"]
        if let json {
            args += [
                "-H", "content-type: application/json", "--data-binary",
                String(decoding: try JSONSerialization.data(withJSONObject: json), as: UTF8.self),
            ]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = args + curlArguments(path)
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let newline = data.lastIndex(of: 10) else {
            throw Failure(
                message:
                    "cannot reach the agent at \(endpoint): \(String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        return Reply(status: Int(String(decoding: data[(newline + 1)...], as: UTF8.self)) ?? 0, body: data[..<newline])
    }

    /// GET returning JSON, or a one-line failure.
    func get(_ path: String) throws -> [String: Any] {
        let reply = try request("GET", path)
        guard reply.status == 200 else { throw Failure(message: reply.problem) }
        return reply.json
    }

    /// Starts a transaction, streams its progress, cancels it on Ctrl-C. Returns the exit code
    /// (0 done, 77 unchanged, 1 failed).
    func runTransaction(operation: String, arguments: [String: Any]) -> Int32 {
        do {
            let reply = try request("POST", "/v1/transactions", json: ["operation": operation, "arguments": arguments])
            guard reply.status == 202 || reply.status == 200, let id = reply.json["id"] as? String else {
                throw Failure(message: reply.problem)
            }
            if reply.status == 200 && !quiet { FileHandle.standardError.write(Data("Joined running transaction \(id)\n".utf8)) }
            return try follow(id)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            return 1
        }
    }

    /// Streams a transaction's events until it finishes.
    func follow(_ id: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-sS", "-N"] + curlArguments("/v1/transactions/\(id)/events")
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()

        // Ctrl-C / SIGTERM: ask the agent to cancel, keep streaming until `finished`.
        let client = self
        _ = SignalCancellation {
            FileHandle.standardError.write(Data("Cancelling \(id)...\n".utf8))
            _ = try? client.request("DELETE", "/v1/transactions/\(id)")
        }

        let progress = TerminalProgress()
        var event = ""
        var outcome: [String: Any]?
        var buffer = Data()
        let handle = out.fileHandleForReading
        while outcome == nil {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                guard line.hasPrefix("data: ") else { continue }
                let data = (try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8))) as? [String: Any] ?? [:]
                switch event {
                case "task-begin" where !quiet: progress.phase(data["task"] as? String ?? "")
                case "percent" where !quiet:
                    progress.packages(done: data["done"] as? Int ?? 0, total: data["total"] as? Int ?? 0, item: data["item"] as? String ?? "")
                case "message" where !quiet: progress.message(data["text"] as? String ?? "")
                case "finished": outcome = data
                default: break
                }
            }
        }
        process.terminate()
        process.waitUntilExit()
        TerminalProgress.finish()
        let record = try get("/v1/transactions/\(id)")
        guard let outcome, outcome["success"] as? Bool == true else {
            let reason = (outcome?["error"] as? String) ?? (record["error"] as? String) ?? "transaction \(id) ended without a result"
            FileHandle.standardError.write(Data("error: \(reason)\n".utf8))
            return 1
        }
        print(record["summary"] as? String ?? "Done.")
        return record["changed"] as? Bool == false ? 77 : 0
    }
}
