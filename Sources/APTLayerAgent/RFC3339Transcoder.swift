import Foundation
import OpenAPIRuntime

/// RFC 3339 dates for the API: written without fractions, read with or without them
/// (`2026-12-01T10:00:00Z` and `2026-12-01T10:00:00.250+01:00` alike).
struct RFC3339Transcoder: DateTranscoder {
    func encode(_ date: Date) throws -> String { date.formatted(.iso8601) }

    func decode(_ text: String) throws -> Date {
        if let date = try? Date(text, strategy: .iso8601) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(text) is not an RFC 3339 date-time"))
    }
}
