import APTLayerFleet
import APTLayerTLS
import Foundation

/// The agent's `fleet:` configuration: which fleet and stream this host is in, where the signed
/// policy is served, whom to trust, and how to reboot. Every key is documented in `docs/fleet.md`
/// and in `deploy/agent/agent.yaml`.
public struct FleetConfiguration: Codable, Sendable, Equatable {
    /// The fleet's name; a policy for another fleet is refused.
    public var name: String
    /// The stream (group of hosts) this host follows: chosen here, never by the server.
    public var stream: String
    /// The policy URL (`https://…/policy.yaml`; `http://` only for loopback tests); nil on an
    /// offline host that takes policies from ``bundles`` only.
    public var policyURL: String?
    /// A directory watched for offline bundles (`*.bundle`, from `apt-layer bundle apply` or a
    /// mounted USB stick): each new one's signed policy is accepted as a fetched one would be, and
    /// its images are staged from the bundle (docs/images.md).
    public var bundles: String?
    /// The detached signature's URL (default: the policy URL plus `.sig`).
    public var signatureURL: String?
    /// OpenSSH `allowed_signers` file of the keys trusted to sign policies.
    public var signers = "/etc/apt-layer/policy-signers"
    /// Distinct trusted keys a policy needs.
    public var threshold = 1
    /// How often the policy is fetched.
    public var pollInterval = PolicyDuration(seconds: 900)
    /// Up to this much is added to each wait, at random, so a fleet does not poll in step
    /// (default: a tenth of the interval).
    public var pollJitter: PolicyDuration?
    /// CA bundle for the policy server and the FleetLock server (default: the system's).
    public var ca: String?
    /// Client certificate and key presented to the policy and FleetLock servers.
    public var certificate: String?
    public var key: String?
    /// The command that reboots the host after finalization is unlocked.
    public var rebootCommand = ["systemctl", "reboot"]
    /// Reboots into one release before the driver gives up on it (ends reboot loops).
    public var maxAttempts = 3
    /// Local maintenance windows: they narrow the policy's (both must be open), never widen them.
    public var windows: [MaintenanceWindow]?
    /// Where the machine-id is read (it never leaves the host).
    public var machineIDFile = "/etc/machine-id"
    /// Where the boot id is read; a new one means the host rebooted.
    public var bootIDFile = "/proc/sys/kernel/random/boot_id"
    /// Whether the policy's reboot hooks may run commands (false: only units; a command hook
    /// then fails, which postpones the reboot). Narrows the policy, never widens it.
    public var hookCommands = true
    /// A cap on every reboot hook's timeout (the policy's, or its default 5m).
    public var hookTimeoutMax: PolicyDuration?

    public init(name: String, stream: String, policyURL: String) {
        self.name = name
        self.stream = stream
        self.policyURL = policyURL
    }

    enum CodingKeys: String, CodingKey {
        case name, stream, signers, threshold, ca, certificate, key, windows, bundles
        case policyURL = "policy-url"
        case signatureURL = "signature-url"
        case pollInterval = "poll-interval"
        case pollJitter = "poll-jitter"
        case rebootCommand = "reboot-command"
        case maxAttempts = "max-attempts"
        case machineIDFile = "machine-id-file"
        case bootIDFile = "boot-id-file"
        case hookCommands = "hook-commands"
        case hookTimeoutMax = "hook-timeout-max"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        stream = try c.decode(String.self, forKey: .stream)
        policyURL = try c.decodeIfPresent(String.self, forKey: .policyURL)
        bundles = try c.decodeIfPresent(String.self, forKey: .bundles)
        signatureURL = try c.decodeIfPresent(String.self, forKey: .signatureURL)
        signers = try c.decodeIfPresent(String.self, forKey: .signers) ?? signers
        threshold = try c.decodeIfPresent(Int.self, forKey: .threshold) ?? threshold
        pollInterval = try c.decodeIfPresent(PolicyDuration.self, forKey: .pollInterval) ?? pollInterval
        pollJitter = try c.decodeIfPresent(PolicyDuration.self, forKey: .pollJitter)
        ca = try c.decodeIfPresent(String.self, forKey: .ca)
        certificate = try c.decodeIfPresent(String.self, forKey: .certificate)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        rebootCommand = try c.decodeIfPresent([String].self, forKey: .rebootCommand) ?? rebootCommand
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? maxAttempts
        windows = try c.decodeIfPresent([MaintenanceWindow].self, forKey: .windows)
        machineIDFile = try c.decodeIfPresent(String.self, forKey: .machineIDFile) ?? machineIDFile
        bootIDFile = try c.decodeIfPresent(String.self, forKey: .bootIDFile) ?? bootIDFile
        hookCommands = try c.decodeIfPresent(Bool.self, forKey: .hookCommands) ?? hookCommands
        hookTimeoutMax = try c.decodeIfPresent(PolicyDuration.self, forKey: .hookTimeoutMax)
    }

    /// Checks what decoding cannot; the message names the key.
    public func validate() throws(DriverFailure) {
        if name.isEmpty || stream.isEmpty { throw DriverFailure("fleet.name and fleet.stream must not be empty") }
        guard policyURL != nil || bundles != nil else { throw DriverFailure("fleet needs policy-url, bundles or both") }
        if let bundles, !bundles.hasPrefix("/") { throw DriverFailure("fleet.bundles must be an absolute directory") }
        let urls = policyURL.map { [("policy-url", $0), ("signature-url", signatureURL ?? $0)] } ?? []
        for (key, value) in urls {
            guard let url = URL(string: value), ["https", "http"].contains(url.scheme ?? ""), url.host != nil else {
                throw DriverFailure("fleet.\(key) must be an http(s) URL, got \(value.debugDescription)")
            }
        }
        if threshold < 1 { throw DriverFailure("fleet.threshold must be at least 1") }
        if pollInterval.seconds < 1 { throw DriverFailure("fleet.poll-interval must be at least 1s") }
        if rebootCommand.first?.isEmpty ?? true {
            throw DriverFailure("fleet.reboot-command must be a non-empty argument list")
        }
        if maxAttempts < 1 { throw DriverFailure("fleet.max-attempts must be at least 1") }
        if let cap = hookTimeoutMax, cap.seconds < 1 { throw DriverFailure("fleet.hook-timeout-max must be at least 1s") }
        if (certificate == nil) != (key == nil) { throw DriverFailure("fleet.certificate and fleet.key go together") }
        for window in windows ?? [] {
            do { try window.validate() } catch { throw DriverFailure("fleet.windows: \(error)") }
        }
    }

    /// ``ca``, ``certificate`` and ``key`` as one set.
    public var tlsFiles: ClientTLSFiles { ClientTLSFiles(ca: ca, certificate: certificate, key: key) }

    /// The signature's URL, when policies are fetched.
    public var resolvedSignatureURL: String? { signatureURL ?? policyURL.map { $0 + ".sig" } }

    /// The jitter bound in seconds.
    var jitterSeconds: Int { pollJitter?.seconds ?? pollInterval.seconds / 10 }
}
