import APTLayerAPI
import APTLayerModel
import Foundation
import HTTPTypes
import Hummingbird
import Yams

/// A request that does not decode against openapi.yaml, said the way the document says it: the
/// JSON pointer (RFC 6901) of the offending member (`/query/NAME` for a query parameter, `/path/NAME`
/// for a path one), what it must be, and the allowed values when the document lists them (an
/// `enum`, or an object's known members) — never the Swift decoder's own words.
enum DecodingProblem {
    /// The document's schemas and operations, parsed once.
    nonisolated(unsafe) static let document: [String: Any] = (try? Yams.load(yaml: openAPIDocument) as? [String: Any]) ?? [:]

    static func problem(_ error: any Error, request: Request) -> AgentProblem? {
        guard let decoding = find(error) else { return nil }
        let method = request.method.rawValue.lowercased()
        let path = request.uri.path
        switch decoding {
        case .keyNotFound(let key, let context):
            let pointer = pointer(context.codingPath + [key])
            return make(pointer, "is required", allowed: nil)
        case .valueNotFound(_, let context):
            return make(pointer(context.codingPath), "must not be null", allowed: nil)
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty, let (name, _) = badParameter(request, path: path, method: method, mismatch: true) {
                return make("/\(name.location)/\(name.name)", "must be \(describe(type))", allowed: nil)
            }
            return make(pointer(context.codingPath), "must be \(describe(type))", allowed: nil)
        case .dataCorrupted(let context):
            let text = context.debugDescription
            if text.hasPrefix("Additional properties are disabled") {
                let parent = Array(context.codingPath.dropLast())
                let known = bodySchema(path: path, method: method).flatMap { schema(at: parent, in: $0) }.map { properties($0) }
                return make(pointer(context.codingPath), "is not a known member", allowed: known)
            }
            if let range = text.range(of: " from invalid String value ") {
                let value = String(text[range.upperBound...])
                if context.codingPath.isEmpty, let (name, schema) = badParameter(request, path: path, method: method, value: value) {
                    return make("/\(name.location)/\(name.name)", "cannot be \(value.debugDescription)", allowed: enumValues(schema))
                }
                let allowed = bodySchema(path: path, method: method).flatMap { schema(at: context.codingPath, in: $0) }.flatMap(enumValues)
                return make(pointer(context.codingPath), "cannot be \(value.debugDescription)", allowed: allowed)
            }
            if context.codingPath.isEmpty, let (name, schema) = badParameter(request, path: path, method: method, mismatch: true) {
                // A parameter that is not what its schema says (`since=garbage`), not the body.
                let what = schema["format"] as? String == "date-time" ? "an RFC 3339 date-time" : "a valid \(name)"
                return make("/\(name.location)/\(name.name)", "must be \(what)", allowed: nil)
            }
            if context.codingPath.isEmpty { return make("", "is not valid JSON for this operation", allowed: nil) }
            return make(pointer(context.codingPath), "is not valid", allowed: nil)
        @unknown default:
            return nil
        }
    }

    static func make(_ pointer: String, _ must: String, allowed: [String]?) -> AgentProblem {
        let subject = pointer.isEmpty ? "the request body" : pointer
        var detail = "\(subject) \(must)"
        if let allowed, !allowed.isEmpty { detail += " (allowed: \(allowed.joined(separator: ", ")))" }
        var problem = AgentProblem.badRequest(detail)
        problem.pointer = pointer
        problem.allowed = allowed
        return problem
    }

    /// The first `DecodingError` in an error's chain (the runtime wraps it).
    static func find(_ error: any Error, depth: Int = 0) -> DecodingError? {
        if let decoding = error as? DecodingError { return decoding }
        guard depth < 4 else { return nil }
        for child in Mirror(reflecting: error).children {
            if let inner = child.value as? any Error, let found = find(inner, depth: depth + 1) { return found }
        }
        return nil
    }

    static func pointer(_ path: [any CodingKey]) -> String {
        path.map { key in
            "/"
                + (key.intValue.map(String.init)
                    ?? key.stringValue.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1"))
        }.joined()
    }

    static func describe(_ type: Any.Type) -> String {
        let name = "\(type)"
        if name.hasPrefix("Array") { return "an array" }
        if name.hasPrefix("Dictionary") { return "an object" }
        switch name {
        case "String": return "a string"
        case "Bool": return "true or false"
        case "Int", "Int64", "Int32": return "an integer"
        case "Double", "Float": return "a number"
        default: return "a \(name)"
        }
    }

    // MARK: - The document

    static var schemas: [String: Any] { ((document["components"] as? [String: Any])?["schemas"] as? [String: Any]) ?? [:] }

    /// The operation object of `method` on the path template that `path` matches.
    static func operation(path: String, method: String) -> [String: Any]? {
        guard let template = pathTemplate(path: path) else { return nil }
        return ((document["paths"] as? [String: Any])?[template] as? [String: Any])?[method] as? [String: Any]
    }

    static func resolve(_ schema: [String: Any]) -> [String: Any] {
        if let ref = schema["$ref"] as? String, let name = ref.split(separator: "/").last, let target = schemas[String(name)] as? [String: Any] {
            return resolve(target)
        }
        return schema
    }

    static func bodySchema(path: String, method: String) -> [String: Any]? {
        guard let op = operation(path: path, method: method),
            let content = (op["requestBody"] as? [String: Any])?["content"] as? [String: Any],
            let json = content["application/json"] as? [String: Any], let schema = json["schema"] as? [String: Any]
        else { return nil }
        return resolve(schema)
    }

    /// The schema at a coding path below `root` (properties by name, array items by index).
    static func schema(at path: [any CodingKey], in root: [String: Any]) -> [String: Any]? {
        var current = resolve(root)
        for key in path {
            if key.intValue != nil, let items = current["items"] as? [String: Any] {
                current = resolve(items)
            } else if let property = (current["properties"] as? [String: Any])?[key.stringValue] as? [String: Any] {
                current = resolve(property)
            } else {
                return nil
            }
        }
        return current
    }

    static func properties(_ schema: [String: Any]) -> [String] { ((schema["properties"] as? [String: Any]) ?? [:]).keys.sorted() }

    static func enumValues(_ schema: [String: Any]) -> [String]? { (resolve(schema)["enum"] as? [Any])?.map { "\($0)" } }

    /// The query or path parameter a failed conversion was about: the one whose value is `value`,
    /// or (a type mismatch) the one whose schema has `typeName`'s JSON type.
    static func badParameter(_ request: Request, path: String, method: String, value: String? = nil, mismatch: Bool = false)
        -> ((name: String, location: String), [String: Any])?
    {
        guard let parameters = operation(path: path, method: method)?["parameters"] as? [[String: Any]] else { return nil }
        let query = request.uri.queryParameters
        let segments = path.split(separator: "/")
        for parameter in parameters {
            guard let name = parameter["name"] as? String, let location = parameter["in"] as? String,
                let declared = parameter["schema"] as? [String: Any]
            else { continue }
            let schema = resolve(declared)
            let given: String?
            if location == "query" {
                given = query[Substring(name)].map(String.init)
            } else if location == "path", let op = pathTemplate(path: path),
                let index = op.split(separator: "/").firstIndex(where: { $0 == "{\(name)}" }), index < segments.count
            {
                given = String(segments[index])
            } else {
                given = nil
            }
            guard let given else { continue }
            let type = schema["type"] as? String
            if let value, given == value { return ((name, location), schema) }
            if mismatch, type == "integer", Int(given) == nil { return ((name, location), schema) }
            if mismatch, type == "boolean", given != "true", given != "false" { return ((name, location), schema) }
            if mismatch, type == "string", schema["format"] as? String == "date-time", RFC3339.parse(given) == nil {
                return ((name, location), schema)
            }
        }
        return nil
    }

    static func pathTemplate(path: String) -> String? {
        ((document["paths"] as? [String: Any]) ?? [:]).keys.first { PathTemplate($0).matches(path) }
    }
}
