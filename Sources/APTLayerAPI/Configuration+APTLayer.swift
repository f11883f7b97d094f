import OpenAPIRuntime

extension Configuration {
    /// How the agent's server and every client of it convert bodies: RFC 3339 dates
    /// (``RFC3339Transcoder``) and JSON with sorted keys (the same bytes for the same document).
    public static let aptLayer = Configuration(dateTranscoder: RFC3339Transcoder(), jsonEncodingOptions: [.sortedKeys])
}
