import Foundation

/// The engine's view of the `apt-layer.status/v2` document. What the CLI prints and the agent
/// serves is the API's `StatusDocument` (openapi/openapi.yaml, the one source of the schema), made
/// from this; its JSON Schema is generated into `openapi/status-v2.schema.json`.
public struct StatusDocument: Encodable, Sendable, Equatable {
    /// Always `apt-layer.status/v2`.
    public var schema = "apt-layer.status/v2"
    /// The sysroot directory.
    public var sysroot: String
    /// Deployments in boot order.
    public var deployments: [DeploymentStatus]
    /// The boot counter (nil: the sysroot has no GRUB environment block to count in).
    public var bootCounter: BootCounterStatus?

    /// Creates a document.
    public init(sysroot: String, deployments: [DeploymentStatus], bootCounter: BootCounterStatus? = nil) {
        self.sysroot = sysroot
        self.deployments = deployments
        self.bootCounter = bootCounter
    }

    /// One deployment.
    public struct DeploymentStatus: Encodable, Sendable, Equatable {
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
        /// Base packages replaced (`override replace`): the base's version and the deployment's.
        public var replacedBasePackages: [PackageReplacement] = []
        /// What apply-live changed in the running system this boot (the booted deployment only).
        public var live: LiveState?

        /// Creates a deployment's status.
        public init(
            index: Int, id: String, osname: String, serial: Int, checksum: String, version: String?, timestamp: UInt64, origin: String?, booted: Bool,
            `default`: Bool, staged: Bool, pinned: Bool, baseChecksum: String, baseVersion: String?, baseTimestamp: UInt64?,
            requestedPackages: [String], requestedLocalPackages: [LocalPackage], requestedBaseRemovals: [String], layeredPackages: [Package],
            kernelArguments: String
        ) {
            self.index = index
            self.id = id
            self.osname = osname
            self.serial = serial
            self.checksum = checksum
            self.version = version
            self.timestamp = timestamp
            self.origin = origin
            self.booted = booted
            self.`default` = `default`
            self.staged = staged
            self.pinned = pinned
            self.baseChecksum = baseChecksum
            self.baseVersion = baseVersion
            self.baseTimestamp = baseTimestamp
            self.requestedPackages = requestedPackages
            self.requestedLocalPackages = requestedLocalPackages
            self.requestedBaseRemovals = requestedBaseRemovals
            self.layeredPackages = layeredPackages
            self.kernelArguments = kernelArguments
        }

        enum CodingKeys: String, CodingKey {
            case index, id, osname, serial, checksum, version, committedAt, origin, booted, `default`, staged, pinned, baseChecksum
            case baseVersion, baseCommittedAt, requestedPackages, requestedLocalPackages, requestedBaseRemovals, layeredPackages
            case kernelArguments, replacedBasePackages, live
        }

        enum LiveKeys: String, CodingKey {
            case commit, inProgress, phase, overlay, addedPackages, changedPackages, removedPackages, keptEtc, notStarted, started
        }

        enum LocalPackageKeys: String, CodingKey { case sha256, name, file }

        /// The `apt-layer.status/v2` form (docs/api.md): RFC 3339 times, package objects.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(id, forKey: .id)
            try c.encode(osname, forKey: .osname)
            try c.encode(serial, forKey: .serial)
            try c.encode(checksum, forKey: .checksum)
            try c.encodeIfPresent(version, forKey: .version)
            try c.encode(Self.rfc3339(timestamp), forKey: .committedAt)
            try c.encodeIfPresent(origin, forKey: .origin)
            try c.encode(booted, forKey: .booted)
            try c.encode(self.default, forKey: .default)
            try c.encode(staged, forKey: .staged)
            try c.encode(pinned, forKey: .pinned)
            try c.encode(baseChecksum, forKey: .baseChecksum)
            try c.encodeIfPresent(baseVersion, forKey: .baseVersion)
            try c.encodeIfPresent(baseTimestamp.map(Self.rfc3339), forKey: .baseCommittedAt)
            try c.encode(requestedPackages, forKey: .requestedPackages)
            var local = c.nestedUnkeyedContainer(forKey: .requestedLocalPackages)
            for p in requestedLocalPackages {
                var o = local.nestedContainer(keyedBy: LocalPackageKeys.self)
                try o.encode(p.sha256, forKey: .sha256)
                try o.encode(p.name, forKey: .name)
                try o.encode(p.nameVersionArch, forKey: .file)
            }
            try c.encode(requestedBaseRemovals, forKey: .requestedBaseRemovals)
            try c.encode(layeredPackages, forKey: .layeredPackages)
            try c.encode(kernelArguments, forKey: .kernelArguments)
            if !replacedBasePackages.isEmpty { try c.encode(replacedBasePackages, forKey: .replacedBasePackages) }
            if let live {
                var o = c.nestedContainer(keyedBy: LiveKeys.self, forKey: .live)
                try o.encodeIfPresent(live.commit, forKey: .commit)
                try o.encodeIfPresent(live.inProgress, forKey: .inProgress)
                try o.encode(live.phase, forKey: .phase)
                try o.encodeIfPresent(live.overlay, forKey: .overlay)
                try o.encode(live.addedPackages, forKey: .addedPackages)
                try o.encode(live.changedPackages, forKey: .changedPackages)
                try o.encode(live.removedPackages, forKey: .removedPackages)
                try o.encode(live.keptEtc, forKey: .keptEtc)
                try o.encode(live.notStarted, forKey: .notStarted)
                try o.encode(live.started, forKey: .started)
            }
        }

        /// Seconds since the epoch as RFC 3339 in UTC, whole seconds (as the API's transcoder writes dates).
        static func rfc3339(_ seconds: UInt64) -> String { Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601) }
    }
}

/// A base package a deployment replaces: its name, the base's version and the version installed.
public struct PackageReplacement: Codable, Sendable, Equatable {
    public var name: String
    public var baseVersion: String
    public var version: String

    /// Creates a replacement record.
    public init(name: String, baseVersion: String, version: String) {
        self.name = name
        self.baseVersion = baseVersion
        self.version = version
    }
}
