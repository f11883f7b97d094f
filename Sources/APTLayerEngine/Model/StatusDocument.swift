/// The engine's view of the `apt-layer.status/v2` document. What the CLI prints and the agent
/// serves is the API's `StatusDocument` (openapi/openapi.yaml, the one source of the schema), made
/// from this; its JSON Schema is generated into `openapi/status-v2.schema.json`.
public struct StatusDocument: Codable, Sendable, Equatable {
    /// Always `apt-layer.status/v2`.
    public var schema = "apt-layer.status/v2"
    /// The sysroot directory.
    public var sysroot: String
    /// Deployments in boot order.
    public var deployments: [DeploymentStatus]

    /// One deployment.
    public struct DeploymentStatus: Codable, Sendable, Equatable {
        public var index: Int
        public var id: String
        public var osname: String
        public var serial: Int
        public var checksum: String
        public var version: String?
        public var timestamp: UInt64
        public var origin: String?
        public var booted: Bool
        public var `default`: Bool
        public var staged: Bool
        public var pinned: Bool
        public var baseChecksum: String
        public var baseVersion: String?
        public var baseTimestamp: UInt64?
        public var requestedPackages: [String]
        public var requestedLocalPackages: [LocalPackage]
        public var requestedBaseRemovals: [String]
        public var layeredPackages: [Package]
        public var kernelArguments: String

    }
}
