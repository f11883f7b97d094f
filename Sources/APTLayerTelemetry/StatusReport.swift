import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation

/// The host's status as one report (`apt-layer.report/v1`): the body of each OTLP log record.
/// Everything a fleet operator asks of one host: what runs, what is staged and what it would roll
/// back to, its layered packages, the running and last transaction, where the update driver is and
/// why, the policy in force, the health verdict and the denylist.
public struct StatusReport: Codable, Sendable, Equatable {
    public var schema = "apt-layer.report/v1"
    /// This host's fleet identity (a keyed hash of the machine-id; the machine-id never leaves).
    public var hostId: String
    public var fleet: String?
    public var stream: String?
    public var agentVersion: String
    /// When the report was written (left out of the change hash).
    public var reportedAt: Date?
    public var deployments: [Deployment]
    public var transactions: Transactions
    public var update: Update?
    public var policy: Policy?
    public var health: Health
    public var denylist: [Denied]

    /// One deployment and its role.
    public struct Deployment: Codable, Sendable, Equatable {
        /// `booted`, `staged`, `pending` (the next boot's, not staged), `rollback`, or `default`
        /// on a sysroot nothing booted.
        public var role: String
        public var checksum: String
        public var baseChecksum: String
        public var baseVersion: String?
        /// The fleet release whose commit this deployment's base is, when known.
        public var release: String?
        public var pinned: Bool
        public var requestedPackages: [String]
        public var layeredPackages: [String]
    }

    /// The running (or queued) transaction and the last finished one.
    public struct Transactions: Codable, Sendable, Equatable {
        public var running: Transaction?
        public var last: Transaction?
    }

    public struct Transaction: Codable, Sendable, Equatable {
        public var id: String
        public var operation: String
        public var state: String
        public var requester: String
        public var finishedAt: Date?
        public var error: String?
    }

    /// The update driver's state.
    public struct Update: Codable, Sendable, Equatable {
        public var state: String
        public var reason: String
        public var since: Date
        public var release: String?
        public var commit: String?
        public var attempts: Int
        public var lockHeld: Bool?
        public var wave: String?
    }

    /// The policy in force.
    public struct Policy: Codable, Sendable, Equatable {
        public var version: Int64
        public var acceptedAt: Date
        public var expires: Date
        public var release: String?
        public var commit: String?
    }

    /// The health verdict of the last release this host verified: `passed`, `failed`,
    /// `checking`, or `none`.
    public struct Health: Codable, Sendable, Equatable {
        public var result: String
        public var release: String?
        public var reason: String?
    }

    public struct Denied: Codable, Sendable, Equatable {
        public var release: String
        public var commit: String
        public var retryEpoch: Int
        public var at: Date
        public var reason: String
    }
}

extension StatusReport.Deployment {
    /// The deployments of a status document with their roles; `releases` maps commits to release ids.
    static func roles(_ status: StatusDocument?, releases: [String: String]) -> [StatusReport.Deployment] {
        guard let status else { return [] }
        let bootedIndex = status.deployments.firstIndex(where: \.booted)
        return status.deployments.enumerated().map { index, d in
            let role: String
            if d.booted {
                role = "booted"
            } else if d.staged {
                role = "staged"
            } else if let bootedIndex {
                role = index < bootedIndex ? "pending" : "rollback"
            } else {
                role = index == 0 ? "default" : "rollback"
            }
            return .init(
                role: role, checksum: d.checksum, baseChecksum: d.baseChecksum, baseVersion: d.baseVersion,
                release: releases[d.baseChecksum], pinned: d.pinned,
                requestedPackages: d.requestedPackages + d.requestedLocalPackages.map(\.recordForm),
                layeredPackages: d.layeredPackages.map(\.metadataForm))
        }
    }
}

extension StatusReport.Transaction {
    init(_ record: TransactionRecord) {
        self.init(
            id: record.id, operation: record.operation.kind.rawValue, state: record.state.rawValue, requester: record.requester,
            finishedAt: record.finishedAt, error: record.error)
    }
}

extension StatusReport.Health {
    /// The verdict the driver's record implies.
    init(_ driver: DriverRecord?, denylist: [DenylistRecord]) {
        guard let driver else {
            self.init(result: "none", release: nil, reason: nil)
            return
        }
        switch driver.state {
        case .verifying: self.init(result: "checking", release: driver.releaseId, reason: driver.reason)
        case .healthy: self.init(result: "passed", release: driver.releaseId, reason: driver.reason)
        case .rollingBack: self.init(result: "failed", release: driver.releaseId, reason: driver.reason)
        case .rebooting where driver.rolledBack:
            self.init(result: "failed", release: driver.releaseId, reason: driver.reason)
        case .failed where denylist.contains(where: { $0.releaseId == driver.releaseId && $0.commit == driver.commit }):
            self.init(result: "failed", release: driver.releaseId, reason: driver.reason)
        default: self.init(result: "none", release: nil, reason: nil)
        }
    }
}
