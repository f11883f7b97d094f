import APTLayerAPI
import APTLayerModel
import Foundation
import HTTPTypes
import Hummingbird
import Yams

/// A request that does not decode against openapi.yaml, said the way the document says it: the
/// JSON pointer (RFC 6901) of the offending member (`/query/NAME` for a query parameter, `/path/NAME`
/// for a path one), what it must be, and the allowed values when the document lists them (an
/// `enum`, a `oneOf`'s discriminator values, or an object's known members) — never the Swift
/// decoder's own words. What went wrong is read from the typed `DecodingError` (its case and coding
/// path), the document's schema at that path (the `oneOf` variant the body's discriminator names),
/// and the request's own values (the body the body-limit middleware kept, the query, the path).
enum DecodingProblem {
    /// The document's schemas and operations, parsed once.
    nonisolated(unsafe) static let document: [String: Any] = (try? Yams.load(yaml: openAPIDocument) as? [String: Any]) ?? [:]

    /// The problem for a request that did not decode; `body` is its parsed JSON, when it had one.
    static func problem(_ error: any Error, request: Request, body: Any? = nil) -> AgentProblem? {
        guard let decoding = find(error) else { return nil }
        let method = request.method.rawValue.lowercased()
        let path = request.uri.path
        let root = bodySchema(path: path, method: method)
        switch decoding {
        case .keyNotFound(let key, let context):
            let pointer = pointer(context.codingPath + [key])
            // A `oneOf`'s discriminator: missing, or naming no variant.
            if let parent = root.flatMap({ schema(at: context.codingPath, in: $0, body: body) }), let values = discriminatorValues(parent),
                (parent["discriminator"] as? [String: Any])?["propertyName"] as? String == key.stringValue
            {
                if let given = value(at: context.codingPath + [key], in: body) as? String {
                    return make(pointer, "cannot be \(given.debugDescription)", allowed: values)
                }
                return make(pointer, "is required", allowed: values)
            }
            return make(pointer, "is required", allowed: nil)
        case .valueNotFound(_, let context):
            return make(pointer(context.codingPath), "must not be null", allowed: nil)
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty, let (name, _) = badParameter(request, path: path, method: method) {
                return make("/\(name.location)/\(name.name)", "must be \(describe(type))", allowed: nil)
            }
            return make(pointer(context.codingPath), "must be \(describe(type))", allowed: nil)
        case .dataCorrupted(let context):
            let codingPath = context.codingPath
            if codingPath.isEmpty {
                if let (name, schema) = badParameter(request, path: path, method: method) {
                    if let allowed = enumValues(schema), let given = name.given, !allowed.contains(given) {
                        return make("/\(name.location)/\(name.name)", "cannot be \(given.debugDescription)", allowed: allowed)
                    }
                    // A parameter that is not what its schema says (`since=garbage`), not the body.
                    let what = schema["format"] as? String == "date-time" ? "an RFC 3339 date-time" : "a valid \(name.name)"
                    return make("/\(name.location)/\(name.name)", "must be \(what)", allowed: nil)
                }
                return make("", "is not valid JSON for this operation", allowed: nil)
            }
            // A member the object does not take.
            if let root, let last = codingPath.last, let parent = schema(at: Array(codingPath.dropLast()), in: root, body: body),
                let members = parent["properties"] as? [String: Any], members[last.stringValue] == nil
            {
                return make(pointer(codingPath), "is not a known member", allowed: members.keys.sorted())
            }
            // A value outside the member's enum.
            if let schema = root.flatMap({ schema(at: codingPath, in: $0, body: body) }), let allowed = enumValues(schema) {
                let given = value(at: codingPath, in: body).map { "\($0)".debugDescription } ?? "that"
                return make(pointer(codingPath), "cannot be \(given)", allowed: allowed)
            }
            return make(pointer(codingPath), "is not valid", allowed: nil)
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

    /// The schema at a coding path below `root` (properties by name, array items by index); a
    /// `oneOf` with a discriminator is the variant the body's value there names.
    static func schema(at path: [any CodingKey], in root: [String: Any], body: Any? = nil) -> [String: Any]? {
        var current = variant(resolve(root), at: [], body: body)
        for (depth, key) in path.enumerated() {
            if key.intValue != nil, let items = current["items"] as? [String: Any] {
                current = resolve(items)
            } else if let property = (current["properties"] as? [String: Any])?[key.stringValue] as? [String: Any] {
                current = resolve(property)
            } else {
                return nil
            }
            current = variant(current, at: Array(path[...depth]), body: body)
        }
        return current
    }

    /// The `oneOf` variant the discriminator's value in `body` at `path` names, else `schema`.
    static func variant(_ schema: [String: Any], at path: [any CodingKey], body: Any?) -> [String: Any] {
        guard let discriminator = schema["discriminator"] as? [String: Any], let name = discriminator["propertyName"] as? String,
            let value = (self.value(at: path, in: body) as? [String: Any])?[name] as? String,
            let ref = (discriminator["mapping"] as? [String: Any])?[value] as? String
        else { return schema }
        return resolve(["$ref": ref])
    }

    /// A `oneOf`'s discriminator values, in the order of its variants.
    static func discriminatorValues(_ schema: [String: Any]) -> [String]? {
        guard let discriminator = schema["discriminator"] as? [String: Any], let mapping = discriminator["mapping"] as? [String: String],
            let variants = schema["oneOf"] as? [[String: Any]]
        else { return nil }
        return variants.compactMap { variant in mapping.first { $0.value == variant["$ref"] as? String }?.key }
    }

    /// The value at a coding path in parsed JSON.
    static func value(at path: [any CodingKey], in body: Any?) -> Any? {
        var current = body
        for key in path {
            if let index = key.intValue, let array = current as? [Any] {
                current = array.indices.contains(index) ? array[index] : nil
            } else {
                current = (current as? [String: Any])?[key.stringValue]
            }
        }
        return current
    }

    static func properties(_ schema: [String: Any]) -> [String] { ((schema["properties"] as? [String: Any]) ?? [:]).keys.sorted() }

    static func enumValues(_ schema: [String: Any]) -> [String]? { (resolve(schema)["enum"] as? [Any])?.map { "\($0)" } }

    /// The query or path parameter a failed conversion was about: the first whose given value its
    /// schema refuses (outside its `enum`, not an integer, not a boolean, not an RFC 3339 date-time).
    static func badParameter(_ request: Request, path: String, method: String)
        -> ((name: String, location: String, given: String?), [String: Any])?
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
            let found = ((name, location, Optional(given)), schema)
            if let allowed = enumValues(schema), !allowed.contains(given) { return found }
            switch schema["type"] as? String {
            case "integer" where Int(given) == nil: return found
            case "boolean" where given != "true" && given != "false": return found
            case "string" where schema["format"] as? String == "date-time" && RFC3339.parse(given) == nil: return found
            default: continue
            }
        }
        return nil
    }

    static func pathTemplate(path: String) -> String? {
        ((document["paths"] as? [String: Any]) ?? [:]).keys.first { PathTemplate($0).matches(path) }
    }
}
