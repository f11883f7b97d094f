import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import TestSupport
import Testing

@testable import APTLayerAgent

/// The agent's composition root (``Agent/buildApplication(configuration:logger:callers:)``) built in
/// process on a state directory and journal of its own, with one fixed caller: requests go to the
/// router through HummingbirdTesting, nothing listens and no root is needed. The sysroot does not
/// exist, so what reaches libostree fails; the router's own answers (problems, roles, limits,
/// validation) are what these beds test.
struct RouterBed {
    /// A reply: status, headers, body text and the body as JSON when it is an object.
    struct Reply {
        var status: Int
        var headers: HTTPFields
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var detail: String { json["detail"] as? String ?? "" }
    }

    /// A throwaway server certificate and CA (the TLS listener is built, though never bound).
    static let pki: String = {
        let dir = NSTemporaryDirectory() + "apt-layer-router-pki-\(getpid())"
        if !FileManager.default.fileExists(atPath: "\(dir)/ca.crt") {
            _ = try? Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(dir)")
        }
        return dir
    }()

    /// Builds an application with `extra` YAML appended to a minimal configuration, runs `body`
    /// against its API router as `caller`, and removes its directory.
    static func with<T: Sendable>(
        caller: Caller = Caller(identity: "operator", role: .operator, remote: true), extra: String = "",
        _ body: @Sendable (AgentApplication, any TestClientProtocol) async throws -> T
    ) async throws -> T {
        let dir = NSTemporaryDirectory() + "apt-layer-router-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = """
            tls: { certificate: \(pki)/server.crt, key: \(pki)/server.key, client-ca: \(pki)/ca.crt }
            roles: { reader: reader, operator: operator, admin: admin }
            sysroot: \(dir)/sysroot
            state-directory: \(dir)/state
            journal: \(dir)/journal.sqlite
            socket: ""
            \(extra)
            """
        try yaml.write(toFile: "\(dir)/agent.yaml", atomically: true, encoding: .utf8)
        let configuration = try AgentConfiguration.load(files: ["\(dir)/agent.yaml"])
        let app = try await Agent.buildApplication(
            configuration: configuration, logger: Logger(label: "router-bed") { _ in SwiftLogNoOpLogHandler() }, callers: .fixed(caller))
        let result = try await app.api.test(.router) { client in try await body(app, client) }
        return result
    }
}

extension TestClientProtocol {
    /// Sends a request with a JSON body (when given) and returns the reply.
    func send(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil) async throws -> RouterBed.Reply {
        var headers = HTTPFields()
        if json != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }) { response in
            RouterBed.Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
        }
    }
}
