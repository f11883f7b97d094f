import APTLayerAPI
import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerAgent

/// The problem types are one enum (`ProblemType`), listed in the OpenAPI document and explained
/// in docs/api.md: the three name the same set, and the server's documents decode as the
/// generated `Problem` the CLI reads.
@Suite("problem types", .tags(.fast))
struct ProblemTypeTests {
    static func slugs(in text: String, pattern: String) throws -> Set<String> {
        let regex = try NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } })
    }

    @Test func theEnumTheDocumentAndTheDocsAgree() throws {
        let cases = Set(ProblemType.allCases.map(\.rawValue))
        let api = try String(contentsOfFile: "\(Paths.packageRoot)/docs/api.md", encoding: .utf8)
        #expect(try Self.slugs(in: api, pattern: #"\| `urn:apt-layer:problem:([a-z-]+)` \|"#) == cases)
        let yaml = openAPIDocument
        let start = try #require(yaml.range(of: "The slugs:"))
        let listed = yaml[start.upperBound...].prefix { $0 != "." }
        let inDocument = Set(listed.split(whereSeparator: { ", \n".contains($0) }).map(String.init))
        #expect(inDocument == cases)
        for type in ProblemType.allCases { #expect(ProblemType(uri: type.uri) == type) }
        #expect(ProblemType(uri: "urn:other:busy") == nil)
        #expect(ProblemType(httpStatus: 415) == .unsupportedMediaType && ProblemType(httpStatus: 418) == .badRequest)
    }

    @Test func aRenderedProblemIsTheGeneratedType() async throws {
        try await RouterBed.with { _, client in
            let reply = try await client.send(.put, "/v1/status")
            let decoded = try JSONDecoder().decode(Components.Schemas.Problem.self, from: Data(reply.body.utf8))
            #expect(ProblemType(uri: decoded._type) == .methodNotAllowed)
            #expect(decoded.status == 405 && decoded.title == "Method Not Allowed")
            #expect(decoded.detail == "/v1/status takes GET, HEAD, not PUT", "\(reply.body)")
            #expect(reply.body.contains(#""detail":"/v1/status takes"#), "slashes are not escaped: \(reply.body)")
        }
    }
}
