import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import Foundation

/// What `GET /v1/policy` and `apt-layer policy status` show: the policy in force, the last fetch,
/// recent refusals, this host's place in the rollout, the driver's state and the denylist.
public struct FleetStatus: Sendable {
    /// How the last fetch ended.
    public enum FetchOutcome: String, Sendable, Codable, CaseIterable {
        /// A new policy passed every check.
        case accepted
        /// The server answered 304 to our entity tag.
        case notModified = "not-modified"
        /// The same bytes as the policy in force.
        case unchanged
        /// The document was refused (signature, fleet, version, expiry, content).
        case rejected
        /// The server could not be reached or answered with an error.
        case error
    }

    public struct LastFetch: Sendable {
        public var at: Date
        public var outcome: FetchOutcome
        public var message: String
        /// Fetches since the agent started (this one included).
        public var count: Int
    }

    public var fleet: String
    public var stream: String
    public var hostID: String
    /// The policy in force and when it was accepted.
    public var policy: AcceptedPolicy?
    public var acceptedAt: Date?
    public var lastFetch: LastFetch?
    public var rejections: [PolicyRejectionRecord]
    /// Where the host stands under the policy in force (nil without one).
    public var explanation: PolicyExplanation?
    public var driver: DriverRecord
    public var denylist: [DenylistRecord]
    /// Maintenance windows that opened and closed while the host was eligible and waiting.
    public var windowsMissed = 0
    /// Policy fetches since the agent started, by outcome.
    public var fetchOutcomes: [FetchOutcome: Int] = [:]
    /// Driver steps not taken since start because the journal could not be written or a fact
    /// guarding a safety decision could not be read, and the last one (nil once a step succeeds).
    public var journalFailures = 0
    public var lastFailure: String?
}
