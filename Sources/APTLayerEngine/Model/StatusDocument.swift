/// The engine's view of the `apt-layer.status/v1` document. What the CLI prints and the agent
/// serves is the API's `StatusDocument` (openapi/openapi.yaml, the one source of the schema), made
/// from this; its JSON Schema is generated into `openapi/status-v1.schema.json`.
public struct StatusDocument: Codable, Sendable, Equatable {
    /// Always `apt-layer.status/v1`.
    public var schema = "apt-layer.status/v1"
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
        public var requestedLocalPackages: [String]
        public var requestedBaseRemovals: [String]
        public var layeredPackages: [String]
        public var kernelArguments: String

        enum CodingKeys: String, CodingKey {
            case index, id, osname, serial, checksum, version, timestamp, origin, booted, staged, pinned
            case `default` = "default"
            case baseChecksum = "base-checksum"
            case baseVersion = "base-version"
            case baseTimestamp = "base-timestamp"
            case requestedPackages = "requested-packages"
            case requestedLocalPackages = "requested-local-packages"
            case requestedBaseRemovals = "requested-base-removals"
            case layeredPackages = "layered-packages"
            case kernelArguments = "kernel-arguments"
        }
    }
}
