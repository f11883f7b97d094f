import APTLayerDriver
import APTLayerJournal
import APTLayerTelemetry
import Foundation
import Yams

/// What an agent may do for a client identity.
public enum Role: String, Codable, Sendable, Comparable, CaseIterable {
    /// GET only.
    case reader
    /// GET and starting transactions; cancelling its own.
    case `operator`
    /// Everything, including cancelling others' transactions.
    case admin

    var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// The agent's effective configuration: `/etc/apt-layer/agent.yaml`, then drop-ins from
/// `/usr/lib/apt-layer/agent.d/*.yaml` and `/etc/apt-layer/agent.d/*.yaml` merged in file-name order
/// (later wins), then command-line flags.
public struct AgentConfiguration: Codable, Sendable, Equatable {
    /// `HOST:PORT` of the mTLS API listener.
    public var listen = "127.0.0.1:7443"
    /// TLS files.
    public var tls = TLSFiles()
    /// Client identity (certificate CN or SAN) → role.
    public var roles: [String: Role] = [:]
    /// Which part of a client certificate is its identity.
    public var identitySource = IdentitySource.commonName
    /// Whether mTLS callers may name .deb files by host path (the local socket always may).
    public var allowRemoteHostPaths = false

    /// Where a client certificate's identity comes from; exactly one such name is required.
    public enum IdentitySource: String, Codable, Sendable, Equatable {
        /// The subject's one CN.
        case commonName = "common-name"
        /// The one DNS subject alternative name.
        case dnsSAN = "dns-san"
    }
    /// The sysroot the engine manages.
    public var sysroot = "/"
    /// The stateroot; nil = booted / only one.
    public var os: String?
    /// The agent's lock lives here (0700).
    public var stateDirectory = "/var/lib/apt-layer"
    /// The transaction journal; nil = the sysroot's (``Journal/defaultPath(sysroot:)``), which
    /// local CLI runs on the same sysroot write too.
    public var journal: String?
    /// A transaction running longer is cancelled with a reason.
    public var transactionTimeoutSeconds: Double = 3600
    /// How many `wait=true` requests may queue behind the running one.
    public var queueLength = 8
    /// Boots a newly staged deployment gets before the boot menu falls back to the previous one
    /// (1...9; 0 turns counting off). The fleet policy's `reboot.boot-tries` overrides it for
    /// the releases it stages. docs/boot-counting.md.
    public var bootTries = 3
    /// Journal retention.
    public var retention = Retention()
    /// `HOST:PORT` of the plaintext metrics/health listener (keep it on loopback).
    public var metricsListen = "127.0.0.1:9478"
    /// Largest accepted request body (uploads of .deb files have their own limits).
    public var maxBodyBytes = 65536
    /// Largest uploaded .deb.
    public var maxUploadBytes: Int64 = 512 << 20
    /// Most bytes the upload store may hold.
    public var maxUploadStoreBytes: Int64 = 4 << 30
    /// Most open connections per listener; more clients wait in the kernel's backlog.
    public var maxConnections = 256
    /// Most open connections from one IP address on the TLS listener; more are closed at once,
    /// before the TLS handshake, so one source cannot take every slot.
    public var maxConnectionsPerPeer = 32
    /// A new TLS connection whose first request head (handshake included) has not arrived within
    /// this long is closed: unauthenticated connections are shed sooner than idle keep-alives.
    public var preAuthTimeoutSeconds: Double = 3
    /// A connection with no traffic for this long is closed.
    public var idleTimeoutSeconds: Double = 60
    /// A connection whose request head (TLS handshake included) has not arrived within this long
    /// after it opened, or after its last response, is closed.
    public var requestHeadTimeoutSeconds: Double = 10
    /// Return freed memory to the kernel when a burst of connections ends (``MemoryTrimmer``).
    public var trimMemory = true
    /// Serve `GET /v1/status` and `/v1/deployments` from cached bytes (``StatusBytes``); false
    /// serves them through the generated handler, byte for byte the same apart from the uptime.
    public var statusFastPath = true
    /// The local Unix socket (0600) for the CLI on this host; empty disables it.
    public var socket = "/run/apt-layer/agent.sock"
    /// Staged updates from a signed fleet policy (docs/fleet.md); absent: the agent changes the
    /// host only when asked through its API.
    public var fleet: FleetConfiguration?
    /// Countme and status reports (docs/telemetry.md); each has an off switch.
    public var telemetry = TelemetryConfiguration()

    public struct TLSFiles: Codable, Sendable, Equatable {
        public var certificate = "/etc/apt-layer/tls/server.crt"
        public var key = "/etc/apt-layer/tls/server.key"
        public var clientCA = "/etc/apt-layer/tls/client-ca.crt"
        public init() {}
        enum CodingKeys: String, CodingKey { case certificate, key, clientCA = "client-ca" }

        /// Each file defaults on its own: a drop-in or a section may name only the one it changes.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            certificate = try c.decodeIfPresent(String.self, forKey: .certificate) ?? certificate
            key = try c.decodeIfPresent(String.self, forKey: .key) ?? key
            clientCA = try c.decodeIfPresent(String.self, forKey: .clientCA) ?? clientCA
        }
    }

    public struct Retention: Codable, Sendable, Equatable {
        public var maxAgeDays: Double = 90
        public var maxCount = 1000
        public init() {}
        enum CodingKeys: String, CodingKey { case maxAgeDays = "max-age-days", maxCount = "max-count" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxAgeDays = try c.decodeIfPresent(Double.self, forKey: .maxAgeDays) ?? maxAgeDays
            maxCount = try c.decodeIfPresent(Int.self, forKey: .maxCount) ?? maxCount
        }
    }

    enum CodingKeys: String, CodingKey {
        case listen, tls, roles, sysroot, os
        case identitySource = "identity-source"
        case allowRemoteHostPaths = "allow-remote-host-paths"
        case stateDirectory = "state-directory"
        case journal
        case transactionTimeoutSeconds = "transaction-timeout-seconds"
        case queueLength = "queue-length"
        case bootTries = "boot-tries"
        case retention
        case metricsListen = "metrics-listen"
        case maxBodyBytes = "max-body-bytes"
        case maxUploadBytes = "max-upload-bytes"
        case maxUploadStoreBytes = "max-upload-store-bytes"
        case maxConnections = "max-connections"
        case maxConnectionsPerPeer = "max-connections-per-peer"
        case preAuthTimeoutSeconds = "pre-auth-timeout-seconds"
        case idleTimeoutSeconds = "idle-timeout-seconds"
        case requestHeadTimeoutSeconds = "request-head-timeout-seconds"
        case socket
        case trimMemory = "trim-memory"
        case statusFastPath = "status-fast-path"
        case fleet, telemetry
    }

    /// The defaults.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AgentConfiguration()
        listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? d.listen
        tls = try c.decodeIfPresent(TLSFiles.self, forKey: .tls) ?? d.tls
        roles = try c.decodeIfPresent([String: Role].self, forKey: .roles) ?? d.roles
        identitySource = try c.decodeIfPresent(IdentitySource.self, forKey: .identitySource) ?? d.identitySource
        allowRemoteHostPaths = try c.decodeIfPresent(Bool.self, forKey: .allowRemoteHostPaths) ?? d.allowRemoteHostPaths
        sysroot = try c.decodeIfPresent(String.self, forKey: .sysroot) ?? d.sysroot
        os = try c.decodeIfPresent(String.self, forKey: .os)
        stateDirectory = try c.decodeIfPresent(String.self, forKey: .stateDirectory) ?? d.stateDirectory
        journal = try c.decodeIfPresent(String.self, forKey: .journal)
        transactionTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .transactionTimeoutSeconds) ?? d.transactionTimeoutSeconds
        queueLength = try c.decodeIfPresent(Int.self, forKey: .queueLength) ?? d.queueLength
        bootTries = try c.decodeIfPresent(Int.self, forKey: .bootTries) ?? d.bootTries
        retention = try c.decodeIfPresent(Retention.self, forKey: .retention) ?? d.retention
        metricsListen = try c.decodeIfPresent(String.self, forKey: .metricsListen) ?? d.metricsListen
        maxBodyBytes = try c.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? d.maxBodyBytes
        maxUploadBytes = try c.decodeIfPresent(Int64.self, forKey: .maxUploadBytes) ?? d.maxUploadBytes
        maxUploadStoreBytes = try c.decodeIfPresent(Int64.self, forKey: .maxUploadStoreBytes) ?? d.maxUploadStoreBytes
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? d.maxConnections
        maxConnectionsPerPeer = try c.decodeIfPresent(Int.self, forKey: .maxConnectionsPerPeer) ?? d.maxConnectionsPerPeer
        preAuthTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .preAuthTimeoutSeconds) ?? d.preAuthTimeoutSeconds
        idleTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .idleTimeoutSeconds) ?? d.idleTimeoutSeconds
        requestHeadTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .requestHeadTimeoutSeconds) ?? d.requestHeadTimeoutSeconds
        socket = try c.decodeIfPresent(String.self, forKey: .socket) ?? d.socket
        trimMemory = try c.decodeIfPresent(Bool.self, forKey: .trimMemory) ?? d.trimMemory
        statusFastPath = try c.decodeIfPresent(Bool.self, forKey: .statusFastPath) ?? d.statusFastPath
        fleet = try c.decodeIfPresent(FleetConfiguration.self, forKey: .fleet)
        telemetry = try c.decodeIfPresent(TelemetryConfiguration.self, forKey: .telemetry) ?? d.telemetry
    }
}

/// A configuration problem: which file or key, and why.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

extension AgentConfiguration {
    /// The files that make up the configuration, in merge order.
    public static func files(
        main: String = "/etc/apt-layer/agent.yaml", dropInDirectories: [String] = ["/usr/lib/apt-layer/agent.d", "/etc/apt-layer/agent.d"]
    )
        -> [String]
    {
        var files: [String] = FileManager.default.fileExists(atPath: main) ? [main] : []
        var dropIns: [String: String] = [:]
        for dir in dropInDirectories {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".yaml") {
                dropIns[name] = "\(dir)/\(name)"  // same name in a later directory wins
            }
        }
        files += dropIns.keys.sorted().map { dropIns[$0]! }
        return files
    }

    /// Loads and merges `files` (mappings merge key by key, recursively; later files win).
    public static func load(files: [String]) throws -> AgentConfiguration {
        var merged: [String: Any] = [:]
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(message: "cannot read \(file)")
            }
            let node: Any?
            do { node = try YAMLValues.load(text) } catch { throw ConfigurationError(message: "\(file): invalid YAML: \(error)") }
            guard let mapping = node as? [String: Any] ?? (node == nil ? [:] : nil) else {
                throw ConfigurationError(message: "\(file): the top level must be a mapping")
            }
            merged = merge(merged, mapping)
        }
        do {
            // Decoded from JSON, not from re-dumped YAML: the YAML round trip turned an empty
            // string (`socket: ""`, which disables the socket) into null, so the default won.
            let json = try JSONSerialization.data(withJSONObject: merged)
            let config = try JSONDecoder().decode(AgentConfiguration.self, from: json)
            if let unknown = ConfigurationKeys.unknown(in: try JSONSerialization.jsonObject(with: json), for: AgentConfiguration.self).first {
                throw ConfigurationError(message: describe(unknown, files: files))
            }
            try config.validate()
            return config
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(message: "invalid configuration: \(error)")
        }
    }

    /// `FILE:LINE: unknown key …; did you mean …?` for the first file (in merge order) that has it.
    static func describe(_ unknown: ConfigurationKeys.Unknown, files: [String]) -> String {
        let section = unknown.path.dropLast().joined(separator: ".")
        var message = "unknown key \(unknown.path.last.map { "\"\($0)\"" } ?? "?")\(section.isEmpty ? "" : " in \(section)")"
        if let suggestion = unknown.suggestion { message += "; did you mean \"\(suggestion)\"?" }
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8), let line = line(of: unknown.path, in: text) else { continue }
            return "\(file):\(line): \(message)"
        }
        return message
    }

    /// The line of the key at `path` (mapping keys and list indexes) in a YAML document.
    static func line(of path: [String], in text: String) -> Int? {
        guard var node = try? Yams.compose(yaml: text) else { return nil }
        for (depth, part) in path.enumerated() {
            if let mapping = node.mapping {
                guard let pair = mapping.first(where: { $0.key.string == part }) else { return nil }
                if depth == path.count - 1 { return pair.key.mark?.line }
                node = pair.value
            } else if let sequence = node.sequence, let index = Int(part), sequence.indices.contains(index) {
                node = sequence[index]
            } else {
                return nil
            }
        }
        return nil
    }

    static func merge(_ base: [String: Any], _ overlay: [String: Any]) -> [String: Any] {
        var result = base
        for (key, value) in overlay {
            if let a = result[key] as? [String: Any], let b = value as? [String: Any] {
                result[key] = merge(a, b)
            } else {
                result[key] = value
            }
        }
        return result
    }

    /// Where the journal is: `journal`, else the sysroot's.
    public var journalPath: String { journal ?? Journal.defaultPath(sysroot: sysroot) }

    /// Checks values that decoding cannot.
    public func validate() throws {
        for (name, value) in [("listen", listen), ("metrics-listen", metricsListen)] where Self.hostPort(value) == nil {
            throw ConfigurationError(message: "\(name): expected HOST:PORT, got \(value)")
        }
        guard transactionTimeoutSeconds > 0 else { throw ConfigurationError(message: "transaction-timeout-seconds must be positive") }
        guard queueLength >= 0 else { throw ConfigurationError(message: "queue-length must be zero or more") }
        guard (0...9).contains(bootTries) else { throw ConfigurationError(message: "boot-tries must be 0 (off) to 9, not \(bootTries)") }
        guard maxBodyBytes >= 1024 else { throw ConfigurationError(message: "max-body-bytes must be at least 1024") }
        guard maxConnections >= 4 else { throw ConfigurationError(message: "max-connections must be at least 4") }
        guard maxConnectionsPerPeer >= 1 else { throw ConfigurationError(message: "max-connections-per-peer must be at least 1") }
        guard idleTimeoutSeconds > 0, requestHeadTimeoutSeconds > 0, preAuthTimeoutSeconds > 0 else {
            throw ConfigurationError(message: "idle-timeout-seconds, request-head-timeout-seconds and pre-auth-timeout-seconds must be positive")
        }
        do { try fleet?.validate() } catch { throw ConfigurationError(message: error.message) }
        do { try telemetry.validate() } catch { throw ConfigurationError(message: error.message) }
    }

    /// Splits `HOST:PORT` (IPv6 in brackets).
    public static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// The effective configuration as YAML (`apt-layerd --check-config`).
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }
}
