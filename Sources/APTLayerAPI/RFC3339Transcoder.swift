import APTLayerModel
import Foundation
import OpenAPIRuntime

/// RFC 3339 dates for the API, on both ends: written without fractions, read by
/// ``RFC3339/parse(_:)``. Neither needs ICU, where the runtime's default (`.iso8601`,
/// `ISO8601DateFormatter`) parses through ICU's `SimpleDateFormat`: a tenth of a CLI's
/// `status` through the agent.
public struct RFC3339Transcoder: DateTranscoder {
    public init() {}

    /// The date in UTC, whole seconds (`2026-12-07T17:10:40Z`).
    public func encode(_ date: Date) throws -> String { date.formatted(.iso8601) }

    /// Any RFC 3339 date-time (fractions and offsets included).
    public func decode(_ text: String) throws -> Date {
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(text) is not an RFC 3339 date-time"))
        }
        return date
    }
}
