import APTLayerAPI
import APTLayerEngine
import APTLayerModel
import APTLayerTLS
import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime

/// The agent's API through the client generated from `openapi/openapi.yaml`, over the local Unix
/// socket (`unix:PATH`) or mutual TLS (`https://HOST:PORT` with a client certificate).
struct AgentClient: Sendable {
    static let defaultSocket = "/run/apt-layer/agent.sock"

    /// Where and how to reach the agent.
    struct Endpoint: Sendable {
        var address: String
        /// `--ca`, `--cert`, `--key` (for an `https://` agent).
        var tls = ClientTLSFiles()

        init(address: String, cert: String? = nil, key: String? = nil, ca: String? = nil) {
            self.address = address
            tls = ClientTLSFiles(ca: ca, certificate: cert, key: key)
        }
    }

    /// A failure talking to the agent, as one line.
    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    let endpoint: Endpoint
    let api: Client

    /// Opens a client, runs `body` with it and shuts it down.
    static func with<T: Sendable>(_ endpoint: Endpoint, _ body: @Sendable (AgentClient) async throws -> T) async throws -> T {
        if endpoint.address.hasPrefix("unix:") {
            let socket = String(endpoint.address.dropFirst(5))
            var info = stat()
            guard stat(socket, &info) == 0 else {
                throw Failure(
                    message: "no agent socket at \(socket): is apt-layerd running? (systemctl status apt-layerd; or --local to run the engine here)")
            }
            // The socket's own transport: no event loops, no pool (UnixSocketTransport).
            let api = Client(serverURL: URL(string: "http://localhost")!, configuration: .aptLayer, transport: UnixSocketTransport(path: socket))
            return try await body(AgentClient(endpoint: endpoint, api: api))
        }
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        guard let serverURL = URL(string: endpoint.address.trimmingCharacters(in: CharacterSet(charactersIn: "/"))), serverURL.scheme == "https",
            serverURL.host != nil
        else {
            throw Failure(message: "--agent must be https://HOST:PORT or unix:PATH, not \(endpoint.address)")
        }
        if let ca = endpoint.tls.ca, !FileManager.default.isReadableFile(atPath: ca) {
            throw Failure(message: "--ca \(ca): no such readable file")
        }
        do { configuration.tlsConfiguration = try endpoint.tls.configuration() } catch {
            switch error.file {
            case .ca: throw Failure(message: "--ca \(error.path): not a readable PEM CA bundle")
            case .certificate: throw Failure(message: "--cert \(error.path): not a readable PEM certificate")
            case .key: throw Failure(message: "--key \(error.path): not a readable PEM private key")
            }
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        // A transaction's event stream lasts as long as the transaction.
        let transport = AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .hours(24)))
        let client = AgentClient(endpoint: endpoint, api: Client(serverURL: serverURL, configuration: .aptLayer, transport: transport))
        let result: Result<T, any Error>
        do { result = .success(try await body(client)) } catch { result = .failure(error) }
        try? await http.shutdown()
        return try result.get()
    }

    /// A one-line reason from a problem document or an unexpected answer; a busy agent's answer
    /// names the CLI's `--wait`, not the API's query parameter.
    static func failure(_ statusCode: Int, _ problem: Components.Schemas.Problem?) -> Failure {
        guard let problem else { return Failure(message: "the agent answered HTTP \(statusCode)") }
        if ProblemType(uri: problem._type) == .busy, let id = problem.transaction {
            return Failure(message: "another transaction (\(id)) is running; pass --wait to queue behind it, or cancel it with apt-layer cancel")
        }
        return Failure(message: problem.detail ?? problem.title)
    }

    /// Rewords transport errors (no socket, refused, untrusted certificate, no client certificate)
    /// as one line naming the agent and the likely fix.
    func reach<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as ClientError {
            throw Failure(message: Self.transportMessage(error.underlyingError, address: endpoint.address))
        }
    }

    /// One line for a failure below HTTP.
    static func transportMessage(_ error: any Error, address: String) -> String {
        if let socket = error as? UnixSocketTransport.Failure { return socket.message(address: address) }
        let text = String(describing: error)
        let first = text.split(separator: "\n").first.map(String.init) ?? text
        if text.contains("ECONNREFUSED") || text.contains("Connection refused") || text.contains("connectionRefused") {
            return "cannot connect to the agent at \(address): connection refused (is apt-layerd running and listening there?)"
        }
        if text.contains("connectTimeout") || text.contains("ETIMEDOUT") {
            return "cannot connect to the agent at \(address): timed out"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") || text.contains("unable to get local issuer") {
            return "the agent's certificate at \(address) is not trusted: pass --ca with the CA that signed it"
        }
        if text.contains("CERTIFICATE_REQUIRED") || text.contains("HANDSHAKE_FAILURE") || text.contains("handshakeFailed")
            || text.contains("UNKNOWN_CA") || text.contains("uncleanShutdown")
        {
            return "the agent at \(address) refused the TLS handshake: pass --cert and --key with a client certificate its client-ca signed"
        }
        if text.contains("remoteConnectionClosed") || text.contains("connectionClosed") {
            return "the agent at \(address) closed the connection (did it restart?)"
        }
        if text.contains("ENOENT") { return "cannot connect to the agent at \(address): no such socket" }
        if text.contains("EACCES") { return "cannot connect to the agent at \(address): permission denied (run as root or a user with a role)" }
        return "cannot reach the agent at \(address): \(first)"
    }

    /// The agent's status document.
    func status() async throws -> Components.Schemas.StatusDocument {
        switch try await reach({ try await api.getStatus() }) {
        case .ok(let ok): return try ok.body.json
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// The fleet status: the policy in force, refusals, this host's rollout, the update driver.
    func policy() async throws -> Components.Schemas.FleetStatus {
        switch try await reach({ try await api.getPolicy() }) {
        case .ok(let ok): return try ok.body.json
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// Asks the agent to fetch the policy now.
    func refreshPolicy() async throws {
        switch try await reach({ try await api.refreshPolicy() }) {
        case .accepted: return
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// A `db diff` between two selectors (index, checksum, ref), defaults as locally.
    func packageDiff(from: String?, to: String?) async throws -> Components.Schemas.PackageDiffReport {
        switch try await reach({ try await api.getPackageDiff(query: .init(from: from, to: to)) }) {
        case .ok(let ok): return try ok.body.json
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// The installed packages of the deployment at `index`.
    func packages(index: Int) async throws -> [Components.Schemas.Package] {
        switch try await reach({ try await api.listDeploymentPackages(path: .init(index: index)) }) {
        case .ok(let ok): return try ok.body.json.packages
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// One transaction.
    func transaction(_ id: String) async throws -> Components.Schemas.Transaction {
        switch try await reach({ try await api.getTransaction(path: .init(id: id)) }) {
        case .ok(let ok): return try ok.body.json
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// A page of the journal, newest first.
    func transactions(state: TransactionState?, kind: HostOperation.Kind?, limit: Int) async throws -> [Components.Schemas.Transaction] {
        let query = Operations.ListTransactions.Input.Query(state: state.map { .init($0) }, operation: kind.map { .init($0) }, limit: limit)
        switch try await reach({ try await api.listTransactions(query: query) }) {
        case .ok(let ok): return try ok.body.json.transactions
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// Starts (or joins, or queues with `wait`) a transaction; true when it joined a running one.
    func start(_ operation: HostOperation, wait: Bool) async throws -> (Components.Schemas.Transaction, joined: Bool) {
        let response = try await reach {
            try await api.createTransaction(query: .init(wait: wait ? true : nil), body: .json(.init(operation)))
        }
        switch response {
        case .accepted(let accepted): return (try accepted.body.json, false)
        case .ok(let joined): return (try joined.body.json, true)
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// Asks the agent to cancel a transaction.
    func cancel(_ id: String) async throws -> Components.Schemas.Transaction {
        switch try await reach({ try await api.cancelTransaction(path: .init(id: id)) }) {
        case .accepted(let accepted): return try accepted.body.json
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
    }

    /// A transaction's events, past then live, ending with `finished`.
    func events(_ id: String) async throws -> AsyncThrowingStream<TransactionEvent, any Error> {
        let body: HTTPBody
        switch try await reach({ try await api.getTransactionEvents(path: .init(id: id)) }) {
        case .ok(let ok): body = try ok.body.textEventStream
        case .default(let code, let problem): throw Self.failure(code, try? problem.body.applicationProblemJson)
        }
        let decoded = body.asDecodedServerSentEventsWithJSONData(of: Components.Schemas.TransactionEvent.self)
        return AsyncThrowingStream { continuation in
            let pump = Task {
                do {
                    for try await event in decoded {
                        if let data = event.data { continuation.yield(data.model) }
                    }
                    continuation.finish()
                } catch let failure as UnixSocketTransport.Failure {
                    continuation.finish(throwing: Failure(message: failure.message(address: endpoint.address)))
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }
}
