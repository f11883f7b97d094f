import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import Crypto
import Foundation
import GRDB
import Synchronization

/// Writes a status report to the outbox inside every journal write that changes what the report
/// shows — in the same SQLite transaction, so a report is never lost and never describes a state
/// that did not commit — when the report differs from the last one, or the heartbeat is due.
public final class StatusReporter: JournalObserver {
    /// What the reporter needs to know about this host.
    public struct Identity: Sendable {
        public var hostID: String
        public var fleet: String?
        public var stream: String?
        public var agentVersion: String

        public init(hostID: String, fleet: String?, stream: String?, agentVersion: String) {
            self.hostID = hostID
            self.fleet = fleet
            self.stream = stream
            self.agentVersion = agentVersion
        }
    }

    let identity: Identity
    let engineOptions: Engine.Options
    let configuration: TelemetryConfiguration
    /// The fleet's policy URL (countme's default endpoint).
    let policyURL: String?
    /// Called after a report was written (wakes the sender).
    let written: @Sendable () -> Void
    /// The last status document the engine gave, and the decoded policy by its row.
    private let cache = Mutex<(status: StatusDocument?, policySeq: Int64?, policy: FleetPolicy?)>((nil, nil, nil))
    /// Releases named by each kept policy row, by row.
    private let releaseCache = Mutex<[Int64: [String: String]]>([:])

    public init(
        identity: Identity, engineOptions: Engine.Options, configuration: TelemetryConfiguration, policyURL: String?,
        written: @escaping @Sendable () -> Void
    ) {
        self.identity = identity
        self.engineOptions = engineOptions
        self.configuration = configuration
        self.policyURL = policyURL
        self.written = written
    }

    /// What applies under the policy in this row (the agent's configuration first).
    public func settings(_ row: PolicyRecord?) -> TelemetrySettings {
        TelemetrySettings(configuration: configuration, policyURL: policyURL, policy: decodedPolicy(row)?.telemetry)
    }

    public func journal(_ db: Database, changed: JournalChange) {
        let row = try? PolicyRecord.order(Column("seq").desc).fetchOne(db)
        guard settings(row).reportURL != nil else { return }
        do {
            if try enqueue(db, changed, policy: row) { written() }
        } catch {
            // Telemetry never fails a state change; the next change or heartbeat reports again.
        }
    }

    /// Whether the engine's view must be read again for this change.
    func needsEngine(_ change: JournalChange) -> Bool {
        switch change {
        case .transaction(let record): record.state.isFinished
        case .deployments: true
        case .driver, .policy, .denylist, .heartbeat: false
        }
    }

    func enqueue(_ db: Database, _ change: JournalChange, policy policyRow: PolicyRecord?) throws -> Bool {
        var report = try build(db, policy: policyRow, refreshEngine: needsEngine(change))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let hash = SHA256.hash(data: try encoder.encode(report)).map { String(format: "%02x", $0) }.joined()
        let last = try Journal.lastReport(db)
        if case .heartbeat = change {
        } else if last.hash == hash {
            return false
        }
        let now = Date()
        report.reportedAt = now
        try Journal.enqueue(db, report: try encoder.encode(report), hash: hash, at: now, maxRows: configuration.maxOutboxReports)
        return true
    }

    /// The report as of this write; `policyRow` is the policy in force, already read by the caller.
    func build(_ db: Database, policy policyRow: PolicyRecord?, refreshEngine: Bool) throws -> StatusReport {
        let driver = try DriverRecord.fetchOne(db, key: 1)
        let policy = decodedPolicy(policyRow)
        let denylist = try DenylistRecord.order(Column("at").desc).fetchAll(db)
        let running = try TransactionRecord.filter(sql: "finishedAt IS NULL").order(Column("seq")).fetchOne(db)
        let last = try TransactionRecord.filter(sql: "finishedAt IS NOT NULL").order(Column("seq").desc).fetchOne(db)
        let release = identity.stream.flatMap { policy?.streams[$0]?.release }
        var releases = try knownReleases(db)
        if let driver, let id = driver.releaseId, let commit = driver.commit { releases[commit] = id }
        if let release { releases[release.commit] = release.id }
        var wave: String?
        if let policy, let stream = identity.stream {
            wave = policy.explain(stream: stream, hostID: identity.hostID, at: Date()).wave
        }
        return StatusReport(
            hostId: identity.hostID, fleet: identity.fleet, stream: identity.stream, agentVersion: identity.agentVersion,
            deployments: StatusReport.Deployment.roles(engineStatus(refresh: refreshEngine), releases: releases),
            transactions: .init(running: running.map(StatusReport.Transaction.init), last: last.map(StatusReport.Transaction.init)),
            update: driver.map {
                .init(
                    state: $0.state.rawValue, reason: $0.reason, since: $0.since, release: $0.releaseId, commit: $0.commit,
                    attempts: $0.attempts, lockHeld: $0.lockHeld, wave: wave)
            },
            policy: policyRow.flatMap { row in
                policy.map {
                    .init(version: row.version, acceptedAt: row.acceptedAt, expires: $0.expires, release: release?.id, commit: release?.commit)
                }
            },
            health: .init(driver, denylist: denylist),
            denylist: denylist.map { .init(release: $0.releaseId, commit: $0.commit, retryEpoch: $0.retryEpoch, at: $0.at, reason: $0.reason) })
    }

    /// Commit → release id of every release the kept policies (the newest 20) named, so that a
    /// host rolled back to an older release still reports which one it runs.
    func knownReleases(_ db: Database) throws -> [String: String] {
        let seqs = try Int64.fetchAll(db, sql: "SELECT seq FROM fleet_policy ORDER BY seq")
        var known = releaseCache.withLock { $0 }
        var result: [String: String] = [:]
        for seq in seqs {
            if known[seq] == nil {
                let row = try PolicyRecord.fetchOne(db, key: seq)
                let policy = row.flatMap { try? FleetPolicy.decode($0.bytes) }
                var map: [String: String] = [:]
                for stream in policy?.streams.values.map({ $0 }) ?? [] {
                    if let release = stream.release { map[release.commit] = release.id }
                }
                known[seq] = map
            }
            result.merge(known[seq] ?? [:]) { _, new in new }
        }
        let keep = Set(seqs)
        releaseCache.withLock { $0 = known.filter { keep.contains($0.key) } }
        return result
    }

    func decodedPolicy(_ row: PolicyRecord?) -> FleetPolicy? {
        guard let row else { return nil }
        if let hit = cache.withLock({ $0.policySeq == row.seq ? $0.policy : nil }) { return hit }
        let policy = try? FleetPolicy.decode(row.bytes)
        cache.withLock {
            $0.policySeq = row.seq
            $0.policy = policy
        }
        return policy
    }

    /// The engine's status document: read again when a transaction finished or deployments
    /// changed, else the last one. Reads take no sysroot lock.
    func engineStatus(refresh: Bool) -> StatusDocument? {
        if !refresh, let status = cache.withLock({ $0.status }) { return status }
        guard let status = try? Engine(options: engineOptions).status() else { return cache.withLock { $0.status } }
        cache.withLock { $0.status = status }
        return status
    }
}
