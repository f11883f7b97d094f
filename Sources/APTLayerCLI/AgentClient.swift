import APTLayerAPI
import APTLayerEngine
import APTLayerModel
import AsyncHTTPClient
import Foundation
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
        var cert: String?
        var key: String?
        var ca: String?
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
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        let serverURL: URL
        if endpoint.address.hasPrefix("unix:") {
            // `http+unix://` with the socket path, percent-encoded, as the host; no path of its own.
            let socket = String(endpoint.address.dropFirst(5))
            guard let url = URL(httpURLWithSocketPath: socket, uri: "/"), let base = URL(string: String(url.absoluteString.dropLast())) else {
                throw Failure(message: "invalid socket path \(socket)")
            }
            serverURL = base
        } else {
            guard let url = URL(string: endpoint.address.trimmingCharacters(in: CharacterSet(charactersIn: "/"))), url.scheme == "https" else {
                throw Failure(message: "--agent must be https://HOST:PORT or unix:PATH, not \(endpoint.address)")
            }
            serverURL = url
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            do {
                if let ca = endpoint.ca { tls.trustRoots = .file(ca) }
                if let cert = endpoint.cert { tls.certificateChain = try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) } }
                if let key = endpoint.key { tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)) }
            } catch {
                throw Failure(message: "client TLS files: \(error)")
            }
            configuration.tlsConfiguration = tls
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        // A transaction's event stream lasts as long as the transaction.
        let transport = AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .hours(24)))
        let client = AgentClient(endpoint: endpoint, api: Client(serverURL: serverURL, transport: transport))
        let result: Result<T, any Error>
        do { result = .success(try await body(client)) } catch { result = .failure(error) }
        try? await http.shutdown()
        return try result.get()
    }

    /// A one-line reason from a problem document or an unexpected answer.
    static func failure(_ statusCode: Int, _ problem: Components.Schemas.Problem?) -> Failure {
        Failure(message: problem.map { $0.detail ?? $0.title } ?? "the agent answered HTTP \(statusCode)")
    }

    /// Rewords transport errors ("connection refused") as one line naming the agent.
    func reach<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as ClientError {
            throw Failure(message: "cannot reach the agent at \(endpoint.address): \(error.underlyingError)")
        }
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
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }
}
