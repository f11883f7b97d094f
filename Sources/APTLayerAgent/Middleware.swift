import APTLayerAPI
import APTLayerModel
import CSystemd
import Foundation
import Glibc
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import OpenAPIRuntime
import Synchronization

/// The request context: keeps the connection so middleware can read the TLS peer certificate,
/// and the collected body so a decoding problem can name the values it refused.
public struct AgentRequestContext: RequestContext, BodyKeepingContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's connection.
    public let channel: any Channel
    /// The request body as ``BodyLimitMiddleware`` collected it.
    public let keptBody = KeptBody()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// A context that keeps the collected request body for the middleware in front of the one that
/// collected it (a reference: middleware further in receive copies of the context).
public protocol BodyKeepingContext {
    /// The kept body.
    var keptBody: KeptBody { get }
}

/// One request's collected body.
public final class KeptBody: Sendable {
    private let bytes = Mutex<ByteBuffer?>(nil)
    public init() {}
    /// The body, once collected.
    public var value: ByteBuffer? {
        get { bytes.withLock { $0 } }
        set { bytes.withLock { $0 = newValue } }
    }
    /// The body parsed as JSON, when it is JSON.
    var json: Any? {
        value.flatMap { try? JSONSerialization.jsonObject(with: Data($0.readableBytesView), options: [.fragmentsAllowed]) }
    }
}

/// Who is asking, for handlers (the generated API protocol passes no context).
public struct Caller: Sendable {
    /// Certificate identity (its one CN, or its one DNS SAN), or `uid:N` on the local socket.
    public var identity: String
    /// The role configuration gives that identity.
    public var role: Role
    /// Whether the caller came over mutual TLS (false: the local socket).
    public var remote = false

    /// A caller with `identity` and `role`; `remote` when it came over mutual TLS.
    public init(identity: String, role: Role, remote: Bool = false) {
        self.identity = identity
        self.role = role
        self.remote = remote
    }

    /// The caller of the current request.
    @TaskLocal public static var current = Caller(identity: "anonymous", role: .reader)
}

/// Renders every error as `application/problem+json`. The client's mistakes (undecodable
/// requests, refused operations) are 4xx; anything else is the agent's fault: 5xx, logged with the
/// request and the transaction, and counted in `/metrics`.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let faults: FaultCounter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Self.problem(for: error, request: request, body: (context as? any BodyKeepingContext)?.keptBody)
            if problem.status >= 500 {
                faults.record(problem.kind)
                logger.error(
                    "request failed: \(problem.title)",
                    metadata: [
                        "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(problem.status)",
                        "txn": "\(problem.transaction ?? "-")",
                        "error": "\(problem.cause.map { String(reflecting: $0) } ?? String(reflecting: error))",
                    ])
            }
            return Self.response(problem)
        }
    }

    static func problem(for error: any Error, request: Request? = nil, body: KeptBody? = nil) -> AgentProblem {
        if let problem = error as? AgentProblem { return problem }
        if let server = error as? ServerError {
            if let problem = server.underlyingError as? AgentProblem { return problem }
            if server.operationInput == nil, let request,
                let problem = DecodingProblem.problem(server.underlyingError, request: request, body: body?.json)
            {
                return problem
            }
            let detail = String(describing: server.underlyingError).split(separator: "\n").first.map(String.init) ?? server.causeDescription
            // The runtime sets the operation's input once the request decoded: an error without
            // one is the request's (wrong types, unknown keys, malformed JSON, bad query values);
            // with one, the handler failed on something it did not map, which is our fault.
            if server.operationInput == nil {
                let status = server.httpStatus.code
                return status >= 500 || status == 400
                    ? .badRequest("\(server.causeDescription): \(detail)")
                    : AgentProblem(status: status, kind: ProblemType(httpStatus: status), title: server.httpStatus.reasonPhrase, detail: detail)
            }
            return AgentProblem(
                status: 500, kind: .`internal`, title: "Internal error", detail: "\(server.operationID) failed", cause: server.underlyingError)
        }
        if let http = error as? HTTPError {
            // The router's 404 has no body: name the path and where the paths are listed.
            let detail = http.status == .notFound ? request.map { "no such path: \($0.uri.path) (GET /v1/openapi.yaml lists them)" } : http.body
            return AgentProblem(
                status: http.status.code, kind: ProblemType(httpStatus: http.status.code), title: http.status.reasonPhrase, detail: detail)
        }
        return AgentProblem(status: 500, kind: .`internal`, title: "Internal error", detail: "the agent failed", cause: error)
    }

    /// The problem document, as the generated `Problem` type encodes it (sorted keys, compact).
    static func response(_ problem: AgentProblem) -> Response {
        let document = Components.Schemas.Problem(
            _type: problem.type, title: problem.title, status: problem.status, detail: problem.detail, transaction: problem.transaction,
            pointer: problem.pointer, allowed: problem.allowed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(document)) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: .init(code: problem.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Maps the client certificate to an identity and a role, and enforces: GET needs `reader`,
/// anything else `operator`. An identity with no role gets 403.
struct AuthMiddleware: RouterMiddleware {
    let roles: [String: Role]
    let identitySource: AgentConfiguration.IdentitySource
    let logger: Logger
    /// The caller of each open connection: a keep-alive connection's certificate (or peer uid)
    /// cannot change, so it is read once per connection, not once per request.
    let callers: ConnectionCallers
    /// Where callers come from: the connection, or one fixed caller for in-process tests.
    var resolution = CallerResolution.connection

    func handle(_ request: Request, context: AgentRequestContext, next: (Request, AgentRequestContext) async throws -> Response) async throws
        -> Response
    {
        if case .fixed(let caller) = resolution {
            return try await authorize(caller, request, context: context, next: next)
        }
        let caller = try await callers.caller(for: context.channel) { channel in
            do { return try await Self.caller(channel, roles: roles, source: identitySource) } catch let problem as AgentProblem {
                logger.warning(
                    "client refused", metadata: ["peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(problem.detail ?? "")"])
                throw problem
            }
        }
        return try await authorize(caller, request, context: context, next: next)
    }

    /// GET and HEAD need `reader`, anything else `operator`; the handlers see the caller.
    func authorize(
        _ caller: Caller, _ request: Request, context: AgentRequestContext, next: (Request, AgentRequestContext) async throws -> Response
    ) async throws -> Response {
        let needed: Role = request.method == .get || request.method == .head ? .reader : .operator
        guard caller.role >= needed else {
            throw AgentProblem.forbidden("\(caller.identity) is \(caller.role.rawValue); \(request.method.rawValue) needs \(needed.rawValue)")
        }
        return try await Caller.$current.withValue(caller) {
            try await next(request, context)
        }
    }

    /// On TLS connections the client certificate's identity; on the local Unix socket the peer's
    /// uid (`uid:N`; uid 0 is admin).
    static func caller(_ channel: any Channel, roles: [String: Role], source: AgentConfiguration.IdentitySource) async throws -> Caller {
        if (try? await channel.pipeline.handler(type: NIOSSLHandler.self).get()) != nil {
            let certificate = try await channel.nioSSL_peerCertificate().get()
            guard let certificate else { throw AgentProblem.forbidden("no client certificate") }
            let identity = try identity(of: certificate, source: source)
            guard let role = roles[identity] else { throw AgentProblem.forbidden("identity \(identity) has no role") }
            return Caller(identity: identity, role: role, remote: true)
        }
        guard let provider = channel as? any SocketOptionProvider else { throw AgentProblem.forbidden("unknown transport") }
        let credentials: aptl_ucred = try await provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
        ).get()
        let identity = "uid:\(credentials.uid)"
        if credentials.uid == 0 { return Caller(identity: identity, role: .admin) }
        guard let role = roles[identity] else { throw AgentProblem.forbidden("local user \(identity) has no role") }
        return Caller(identity: identity, role: role)
    }

    /// The certificate's identity: exactly one subject CN (`common-name`) or exactly one DNS
    /// subject alternative name (`dns-san`). None or several is ambiguous and refused: a subject
    /// `CN=reader, CN=admin` is nobody, not whichever CN comes last.
    static func identity(of certificate: NIOSSLCertificate, source: AgentConfiguration.IdentitySource) throws -> String {
        let names: [String]
        switch source {
        case .commonName:
            names = certificate.subjectName.filter { $0.type == .commonName }.map(\.value)
        case .dnsSAN:
            names = certificate._subjectAlternativeNames().filter { $0.nameType == .dnsName }.map {
                String(decoding: Array($0.contents), as: UTF8.self)
            }
        }
        guard names.count == 1, let name = names.first, !name.isEmpty else {
            throw AgentProblem.forbidden(
                "the client certificate must carry exactly one \(source == .commonName ? "subject CN" : "DNS SAN"); it has \(names.count)")
        }
        return name
    }
}

/// Rejects request bodies over the configured size with 413 before anything parses them. Paths in
/// `streamed` (uploads) are not collected: their handler streams the body under its own limit;
/// a declared length over that limit is refused here already.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maxBytes: Int
    var streamed: [String: Int64] = [:]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let length = request.headers[.contentLength].flatMap(Int64.init)
        if request.method == .post, let limit = streamed[request.uri.path] {
            if let length, length > limit {
                throw AgentProblem.uploadTooLarge(limit: limit)
            }
            return try await next(request, context)
        }
        if let length, length > maxBytes {
            throw AgentProblem(status: 413, kind: .bodyTooLarge, title: "Request body too large", detail: "limit is \(maxBytes) bytes")
        }
        var request = request
        if request.method == .post || request.method == .put || request.method == .patch {
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: maxBytes)
            } catch {
                throw AgentProblem(status: 413, kind: .bodyTooLarge, title: "Request body too large", detail: "limit is \(maxBytes) bytes")
            }
            (context as? any BodyKeepingContext)?.keptBody.value = body
            if let key = JSONDuplicateKeys.first(in: body.readableBytesView) {
                throw AgentProblem.badRequest("the key \(key.debugDescription) appears twice in one object")
            }
            if let path = JSONNullMembers.first(in: body.readableBytesView) {
                throw AgentProblem.badRequest("\(path) is null; leave the key out instead")
            }
        }
        return try await next(request, context)
    }
}

/// The OpenAPI runtime percent-encodes header values (`/` becomes `%2F`); a `Location` must be a
/// plain URI reference, so it is decoded on the way out.
struct LocationHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if let location = response.headers[.location], let decoded = location.removingPercentEncoding {
            response.headers[.location] = decoded
        }
        return response
    }
}

/// Callers by connection, dropped when the connection closes.
final class ConnectionCallers: Sendable {
    private let table = Mutex<[ObjectIdentifier: Caller]>([:])

    /// The caller of `channel` when an earlier request on it was resolved; no suspension.
    func known(for channel: any Channel) -> Caller? { table.withLock { $0[ObjectIdentifier(channel)] } }

    func caller(for channel: any Channel, resolve: (any Channel) async throws -> Caller) async throws -> Caller {
        if let known = known(for: channel) { return known }
        let key = ObjectIdentifier(channel)
        let caller = try await resolve(channel)
        table.withLock { $0[key] = caller }
        channel.closeFuture.whenComplete { [weak self] _ in _ = self?.table.withLock { $0.removeValue(forKey: key) } }
        return caller
    }
}
