import HTTPTypes
import Hummingbird
import NIOCore

/// In front of the router: `HEAD` on every `GET` route (the `GET` answer without its body), and
/// `405 Method Not Allowed` with `Allow` for a known path asked with a method it does not take.
/// The routes come from the router itself, which the generated server filled from openapi.yaml.
///
/// The hot reads (`GET`/`HEAD /v1/status` and `/v1/deployments`, no query) on a connection whose
/// caller is already known are answered here from ``StatusBytes`` in one buffer of known length,
/// without the middleware chain; any failure there falls through to the router, which answers
/// (or renders the problem) as before. Every caller has at least the reader role these need.
struct MethodResponder: HTTPResponder {
    typealias Context = AgentRequestContext

    struct Route {
        var template: PathTemplate
        var methods: Set<HTTPRequest.Method>
    }

    let inner: RouterResponder<AgentRequestContext>
    let routes: [Route]
    let fast: StatusBytes?
    let callers: ConnectionCallers?

    init(_ router: Router<AgentRequestContext>, fast: StatusBytes? = nil, callers: ConnectionCallers? = nil) {
        self.fast = fast
        self.callers = callers
        inner = router.buildResponder()
        var table: [String: Set<HTTPRequest.Method>] = [:]
        for route in router.routes { table["\(route.path)", default: []].insert(route.method) }
        routes = table.map { Route(template: PathTemplate($0.key), methods: $0.value) }
    }

    /// The methods a path takes, if it is one of the router's.
    func methods(for path: String) -> Set<HTTPRequest.Method>? {
        let parts = PathTemplate.segments(path)
        return routes.first { $0.template.matches(segments: parts) }?.methods
    }

    /// The fast answer to a hot read, or nil to let the router answer.
    func fastResponse(_ request: Request, context: Context) async -> Response? {
        guard let fast, let callers, request.method == .get || request.method == .head, request.uri.query == nil,
            callers.known(for: context.channel) != nil
        else { return nil }
        let body: ByteBuffer?
        switch request.uri.path {
        case "/v1/status": body = try? await fast.status()
        case "/v1/deployments": body = try? await fast.deployments()
        default: return nil
        }
        guard let body else { return nil }
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: .ok, headers: headers, body: request.method == .head ? ResponseBody() : .init(byteBuffer: body))
    }

    func respond(to request: Request, context: Context) async throws -> Response {
        if let answer = await fastResponse(request, context: context) { return answer }
        guard let methods = methods(for: request.uri.path) else { return try await inner.respond(to: request, context: context) }
        if request.method == .head && methods.contains(.get) {
            var head = request.head
            head.method = .get
            var response = try await inner.respond(to: Request(head: head, body: request.body), context: context)
            response.body = ResponseBody()
            return response
        }
        guard methods.contains(request.method) else {
            var allowed = methods
            if methods.contains(.get) { allowed.insert(.head) }
            let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            var response = ProblemMiddleware<Context>.response(
                AgentProblem(
                    status: 405, kind: .methodNotAllowed, title: "Method Not Allowed",
                    detail: "\(request.uri.path) takes \(allow), not \(request.method.rawValue)"))
            response.headers[.allow] = allow
            return response
        }
        return try await inner.respond(to: request, context: context)
    }
}
