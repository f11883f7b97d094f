import Foundation

/// A JSON document as a value, to carry a report into OTLP's `AnyValue`.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// OTLP/HTTP JSON for logs (`opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest` in
/// the protobuf JSON mapping): lowerCamelCase field names, 64-bit integers as decimal strings,
/// enums as numbers.
public enum OTLPLogs {
    /// `opentelemetry.proto.common.v1.AnyValue`.
    public struct AnyValue: Encodable, Sendable {
        let value: JSONValue

        public init(_ value: JSONValue) { self.value = value }

        enum CodingKeys: String, CodingKey {
            case stringValue, boolValue, intValue, doubleValue, arrayValue, kvlistValue
        }
        struct Values: Encodable { let values: [AnyValue] }
        struct KeyValues: Encodable { let values: [KeyValue] }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch value {
            case .null: break  // an empty AnyValue
            case .bool(let b): try c.encode(b, forKey: .boolValue)
            case .int(let i): try c.encode(String(i), forKey: .intValue)
            case .double(let d): try c.encode(d, forKey: .doubleValue)
            case .string(let s): try c.encode(s, forKey: .stringValue)
            case .array(let a): try c.encode(Values(values: a.map(AnyValue.init)), forKey: .arrayValue)
            case .object(let o):
                let pairs = o.keys.sorted().map { KeyValue(key: $0, value: AnyValue(o[$0]!)) }
                try c.encode(KeyValues(values: pairs), forKey: .kvlistValue)
            }
        }
    }

    /// `opentelemetry.proto.common.v1.KeyValue`.
    public struct KeyValue: Encodable, Sendable {
        public let key: String
        public let value: AnyValue

        public init(key: String, value: AnyValue) {
            self.key = key
            self.value = value
        }

        public init(_ key: String, _ value: String) { self.init(key: key, value: AnyValue(.string(value))) }
    }

    /// One `LogRecord`.
    public struct Record: Encodable, Sendable {
        let timeUnixNano: String
        let observedTimeUnixNano: String
        /// SEVERITY_NUMBER_INFO.
        let severityNumber = 9
        let severityText = "INFO"
        let body: AnyValue
        let attributes: [KeyValue]

        /// A status report written at `time`, observed (sent) at `observed`.
        public init(time: Date, observed: Date, body: JSONValue, attributes: [KeyValue]) {
            timeUnixNano = Self.nanoseconds(time)
            observedTimeUnixNano = Self.nanoseconds(observed)
            self.body = AnyValue(body)
            self.attributes = attributes
        }

        static func nanoseconds(_ date: Date) -> String {
            let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
            return String(ms * 1_000_000)
        }
    }

    /// The whole request: one resource, one scope, the records.
    public static func request(resource: [KeyValue], scope: (name: String, version: String), records: [Record]) throws -> Data {
        struct Scope: Encodable {
            let name: String
            let version: String
        }
        struct ScopeLogs: Encodable {
            let scope: Scope
            let logRecords: [Record]
        }
        struct Resource: Encodable { let attributes: [KeyValue] }
        struct ResourceLogs: Encodable {
            let resource: Resource
            let scopeLogs: [ScopeLogs]
        }
        struct Request: Encodable { let resourceLogs: [ResourceLogs] }
        let body = Request(resourceLogs: [
            ResourceLogs(
                resource: Resource(attributes: resource),
                scopeLogs: [ScopeLogs(scope: Scope(name: scope.name, version: scope.version), logRecords: records)])
        ])
        return try JSONEncoder().encode(body)
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
public enum RetryAfter {
    /// Seconds to wait from `now`, or nil when the header is absent or unreadable.
    public static func seconds(_ header: String?, now: Date = Date()) -> Double? {
        guard let header = header?.trimmingCharacters(in: .whitespaces), !header.isEmpty else { return nil }
        if let seconds = Int(header), seconds >= 0 { return Double(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: header) { return max(0, date.timeIntervalSince(now)) }
        }
        return nil
    }
}
