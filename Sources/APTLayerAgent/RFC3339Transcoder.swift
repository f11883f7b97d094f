import APTLayerModel
import Foundation
import OpenAPIRuntime

/// RFC 3339 dates for the API: written without fractions, read by ``RFC3339/parse(_:)``.
struct RFC3339Transcoder: DateTranscoder {
    func encode(_ date: Date) throws -> String { date.formatted(.iso8601) }

    func decode(_ text: String) throws -> Date {
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(text) is not an RFC 3339 date-time"))
        }
        return date
    }
}
