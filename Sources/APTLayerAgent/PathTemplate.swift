/// A path template (`/v1/transactions/{id}`, or the router's `/v1/transactions/:id`) matched
/// segment by segment: the one matcher behind `405 Allow` (``MethodResponder``) and the document
/// lookups of ``DecodingProblem``.
struct PathTemplate {
    let segments: [Substring]

    init(_ template: String) { segments = Self.segments(template) }

    static func segments(_ path: String) -> [Substring] { path.split(separator: "/", omittingEmptySubsequences: true) }

    /// Whether `path` fills this template: same number of segments, each equal or a parameter.
    func matches(_ path: String) -> Bool { matches(segments: Self.segments(path)) }

    func matches(segments parts: [Substring]) -> Bool {
        segments.count == parts.count
            && zip(segments, parts).allSatisfy { template, part in
                template == part || template.hasPrefix(":") || template.hasPrefix("{") || template == "*"
            }
    }
}
