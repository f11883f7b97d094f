import Crypto
import Foundation
import Yams

/// Why a policy was not accepted. The agent keeps its last good policy and starts nothing new.
public enum PolicyError: Error, Equatable, CustomStringConvertible {
    /// Not a policy document: YAML, fields, values.
    case invalid(String)
    /// The signature file or the trust file cannot be used.
    case signature(String)
    /// Fewer distinct trusted keys signed it than the threshold.
    case belowThreshold(valid: Int, threshold: Int)
    /// A policy for another fleet.
    case wrongFleet(expected: String, got: String)
    /// Not newer than the last accepted version.
    case notNewer(version: Int64, accepted: Int64)
    /// The same version as the accepted one with other bytes: someone signed two different
    /// policies under one version.
    case equivocation(version: Int64)
    case expired(Date)

    /// The refusal's kind as the journal and the API name it.
    public var kind: String {
        switch self {
        case .invalid: "invalid"
        case .signature: "signature"
        case .belowThreshold: "below-threshold"
        case .wrongFleet: "wrong-fleet"
        case .notNewer: "not-newer"
        case .equivocation: "equivocation"
        case .expired: "expired"
        }
    }

    public var description: String {
        switch self {
        case .invalid(let why): "invalid policy: \(why)"
        case .signature(let why): "policy signature: \(why)"
        case .belowThreshold(let valid, let threshold): "policy signed by \(valid) trusted key(s); \(threshold) required"
        case .wrongFleet(let expected, let got): "policy is for fleet \(got), this host is in \(expected)"
        case .notNewer(let version, let accepted): "policy version \(version) is not newer than the accepted \(accepted)"
        case .equivocation(let version): "equivocation: policy version \(version) was signed with different contents"
        case .expired(let at): "policy expired at \(at.formatted(.iso8601))"
        }
    }
}

/// The signed fleet policy (docs/fleet.md): what release each stream should run, how it rolls out,
/// when hosts may reboot.
public struct FleetPolicy: Codable, Sendable, Equatable {
    public struct Remote: Codable, Sendable, Equatable {
        public var name: String
        public var url: String
    }

    public struct Release: Codable, Sendable, Equatable {
        public var id: String
        /// The OSTree commit: the content pin.
        public var commit: String
        /// The same release as an OCI image, pinned by manifest digest
        /// (`docker://REGISTRY/NAME@sha256:HEX`): hosts pull it instead of the remote's ref and
        /// still require `commit` (docs/images.md).
        public var image: String?
        public var published: Date
        /// Waves with an index up to this one (0 = the first) are open.
        public var openThroughWave: Int
        public var waves: [Wave]
        /// A release denylisted on a host (its health check failed there) is retried only when a
        /// signed policy raises this above the epoch it was denylisted at. Default 0.
        public var retryEpoch: Int?
        /// Base packages every host replaces with these .debs when it stages the release (a
        /// fleet-wide hotfix, `override replace`): fetched from `url`, refused unless their
        /// SHA-256 is the pinned one.
        public var replace: [Replacement]?

        enum CodingKeys: String, CodingKey {
            case id, commit, image, published, waves, replace
            case openThroughWave = "open-through-wave"
            case retryEpoch = "retry-epoch"
        }
    }

    /// A .deb that replaces a base package, pinned by content.
    public struct Replacement: Codable, Sendable, Equatable {
        /// Where hosts fetch it (`https://`, `http://`, or `file:` for an offline mirror).
        public var url: String
        /// Its SHA-256 (64 lowercase hex digits).
        public var sha256: String

        public init(url: String, sha256: String) {
            self.url = url
            self.sha256 = sha256
        }

        func validate() throws {
            guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw PolicyError.invalid("a replacement's sha256 is 64 lowercase hex digits, got \(sha256.debugDescription)")
            }
            guard let parsed = URL(string: url), ["http", "https", "file"].contains(parsed.scheme ?? ""), parsed.path.hasSuffix(".deb") else {
                throw PolicyError.invalid("a replacement's url is an http(s) or file URL of a .deb, got \(url.debugDescription)")
            }
        }
    }

    public struct Stream: Codable, Sendable, Equatable {
        public var ref: String
        /// `stream` (the same canaries every release) or `release` (reshuffled per release).
        public var salt: String?
        public var release: Release?
    }

    public var apiVersion: String
    public var kind: String
    public var fleet: String
    public var version: Int64
    public var expires: Date
    public var remote: Remote?
    public var streams: [String: Stream]
    public var windows: [MaintenanceWindow]?
    public var reboot: Reboot?
    public var health: Health?
    public var telemetry: Telemetry?

    /// Decodes a policy document and checks what decoding cannot.
    public static func decode(_ bytes: Data) throws -> FleetPolicy {
        guard bytes.count <= 1 << 20 else { throw PolicyError.invalid("larger than 1 MiB") }
        let decoder = YAMLDecoder()
        let policy: FleetPolicy
        do {
            policy = try decoder.decode(FleetPolicy.self, from: bytes)
        } catch let error as DecodingError {
            throw PolicyError.invalid(Self.describe(error))
        } catch {
            throw PolicyError.invalid("not valid YAML: \(error)".split(separator: "\n").first.map(String.init) ?? "not valid YAML")
        }
        try policy.validate()
        return policy
    }

    /// One line naming the field (as a dotted path) and what is wrong with it.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            let text = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "the document" : String(text.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(let type, let context): return "\(path(context.codingPath)) must be \(typeName(type))"
        case .valueNotFound(let type, let context): return "\(path(context.codingPath)) must be \(typeName(type))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let underlying = context.underlyingError.map { "\($0)" } ?? context.debugDescription
                return "not valid YAML: " + (underlying.split(separator: "\n").first.map(String.init) ?? "")
            }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Bool.Type: "true or false"
        case is Date.Type: "an RFC 3339 time"
        default: "a \(type)".replacingOccurrences(of: "Dictionary<String, Any>", with: "mapping")
        }
    }

    func validate() throws {
        guard apiVersion == "apt-layer/v1", kind == "FleetPolicy" else {
            throw PolicyError.invalid("expected apiVersion apt-layer/v1, kind FleetPolicy")
        }
        guard version > 0 else { throw PolicyError.invalid("version must be positive") }
        for (name, stream) in streams {
            guard let release = stream.release else { continue }
            guard release.commit.count == 64, release.commit.allSatisfy(\.isHexDigit) else {
                throw PolicyError.invalid("stream \(name): release commit must be a full 64-character checksum")
            }
            if let image = release.image {
                let digest = image.split(separator: "@", maxSplits: 1).last ?? ""
                guard image.hasPrefix("docker://"), image.contains("@"), digest.hasPrefix("sha256:"), digest.count == 71,
                    digest.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase }), image.isPrintableASCIIWithoutSpaces
                else {
                    throw PolicyError.invalid("stream \(name): release image must be docker://REGISTRY/NAME@sha256:DIGEST (pinned by digest)")
                }
            }
            guard [nil, "stream", "release"].contains(stream.salt) else {
                throw PolicyError.invalid("stream \(name): salt must be stream or release")
            }
            try Wave.validate(release.waves)
            guard release.openThroughWave >= -1, release.openThroughWave < release.waves.count else {
                throw PolicyError.invalid("stream \(name): open-through-wave must name one of its waves")
            }
        }
        for window in windows ?? [] { try window.validate() }
        for check in health?.checks ?? [] { try check.validate() }
        for replacement in streams.values.compactMap(\.release).flatMap({ $0.replace ?? [] }) { try replacement.validate() }
        // FleetLock groups match ^[a-zA-Z0-9.-]+$; with `group: wave` the wave names are the groups.
        let groupSyntax = { (g: String) in !g.isEmpty && g.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") } }
        if let group = reboot?.group {
            let names = group == "wave" ? streams.values.compactMap(\.release).flatMap { $0.waves.map(\.name) } : [group]
            if let bad = names.first(where: { !groupSyntax($0) }) {
                throw PolicyError.invalid("FleetLock group \(bad.debugDescription) must match ^[a-zA-Z0-9.-]+$")
            }
        }
        for hook in (reboot?.preReboot ?? []) + (reboot?.postBoot ?? []) { try hook.validate() }
        if let retry = reboot?.hookRetry, retry.seconds < 1 { throw PolicyError.invalid("reboot.hook-retry must be at least 1s") }
        if let tries = reboot?.bootTries, !(1...9).contains(tries) {
            throw PolicyError.invalid("reboot.boot-tries must be 1 to 9, not \(tries)")
        }
        if let lock = reboot?.fleetlock {
            guard let url = URL(string: lock), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw PolicyError.invalid("reboot.fleetlock must be an http(s) URL, got \(lock.debugDescription)")
            }
        }
        if let remote {
            guard !remote.name.isEmpty, remote.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
                throw PolicyError.invalid("remote name must be letters, digits, - _ . only")
            }
            guard let url = URL(string: remote.url), ["http", "https", "file"].contains(url.scheme ?? "") else {
                throw PolicyError.invalid("remote url must be an http(s) or file URL")
            }
        }
    }

    /// The salt of a stream's bucket: the stream's name, or the release id with `salt: release`.
    public func salt(stream name: String) -> String {
        guard let stream = streams[name] else { return name }
        return stream.salt == "release" ? (stream.release?.id ?? name) : name
    }
}

/// A policy that passed every check, with the exact bytes and signature that were verified.
public struct AcceptedPolicy: Sendable, Equatable {
    public var policy: FleetPolicy
    public var bytes: Data
    public var signature: String
    /// Principals of the trusted keys that signed it.
    public var signers: [String]

    /// SHA-256 of the verified bytes, hex: what `GET /v1/policy` shows to compare with the file served.
    public var sha256: String { HostIdentity.hex(Data(SHA256.hash(data: bytes))) }

    public init(policy: FleetPolicy, bytes: Data, signature: String, signers: [String]) {
        self.policy = policy
        self.bytes = bytes
        self.signature = signature
        self.signers = signers
    }
}

/// Trust for fleet policies: an allowed-signers file, a threshold of distinct keys, this host's fleet.
public struct PolicyTrust: Sendable {
    public static let namespace = "apt-layer-policy"
    public var signers: AllowedSigners
    public var threshold: Int
    /// This host's fleet; nil accepts any fleet (`apt-layer policy verify` without `--fleet`).
    public var fleet: String?

    public init(signers: AllowedSigners, threshold: Int, fleet: String?) {
        self.signers = signers
        self.threshold = max(threshold, 1)
        self.fleet = fleet
    }

    /// Accepts `bytes` (verified exactly as received, never re-serialised) with `signature` (one
    /// or more concatenated `ssh-keygen -Y sign -n apt-layer-policy` blocks) when the threshold is
    /// met, the fleet matches, the version is newer than `last`, and it has not expired.
    public func accept(_ bytes: Data, signature: String, last: AcceptedPolicy?, now: Date = Date()) throws -> AcceptedPolicy {
        let signatures = try SSHSignature.parseAll(signature)
        var keys: [Data] = []
        var principals: [String] = []
        for sig in signatures where sig.verifies(bytes, namespace: Self.namespace) {
            guard let entry = signers.entry(for: sig.publicKey, namespace: Self.namespace), !keys.contains(sig.publicKey) else { continue }
            keys.append(sig.publicKey)
            principals.append(entry.principals.joined(separator: ","))
        }
        guard keys.count >= threshold else { throw PolicyError.belowThreshold(valid: keys.count, threshold: threshold) }
        let policy = try FleetPolicy.decode(bytes)
        if let fleet, policy.fleet != fleet { throw PolicyError.wrongFleet(expected: fleet, got: policy.fleet) }
        if let last {
            if policy.version == last.policy.version && bytes != last.bytes { throw PolicyError.equivocation(version: policy.version) }
            guard policy.version > last.policy.version else { throw PolicyError.notNewer(version: policy.version, accepted: last.policy.version) }
        }
        guard policy.expires > now else { throw PolicyError.expired(policy.expires) }
        return AcceptedPolicy(policy: policy, bytes: bytes, signature: signature, signers: principals)
    }
}

extension String {
    /// Printable ASCII, no spaces: what may stand in a policy's image reference.
    var isPrintableASCIIWithoutSpaces: Bool { unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7f } }
}
