import APTLayerAPI
import APTLayerDriver
import APTLayerFleet
import APTLayerJournal
import Foundation

extension APIHandler {
    public func getPolicy(_ input: Operations.GetPolicy.Input) async throws -> Operations.GetPolicy.Output {
        guard let driver else { return .ok(.init(body: .json(.init(configured: false)))) }
        return .ok(.init(body: .json(Components.Schemas.FleetStatus(await driver.status()))))
    }

    public func refreshPolicy(_ input: Operations.RefreshPolicy.Input) async throws -> Operations.RefreshPolicy.Output {
        guard let driver else { throw AgentProblem.notFound("this agent has no fleet configuration") }
        await driver.pollNow()
        return .accepted(.init())
    }
}

extension Components.Schemas.FleetStatus {
    init(_ s: FleetStatus) {
        self.init(
            configured: true, fleet: s.fleet, stream: s.stream, hostId: s.hostID,
            policy: s.policy.map { accepted in
                .init(
                    version: accepted.policy.version, acceptedAt: s.acceptedAt ?? Date(timeIntervalSince1970: 0), expires: accepted.policy.expires,
                    signers: accepted.signers, sha256: accepted.sha256)
            },
            lastFetch: s.lastFetch.map {
                .init(count: $0.count, at: $0.at, outcome: .init(rawValue: $0.outcome.rawValue) ?? .error, message: $0.message)
            },
            rejections: s.rejections.map { r in
                .init(at: r.at, kind: .init(rawValue: r.kind) ?? .invalid, message: r.message, version: r.version)
            },
            rollout: s.explanation.map(Components.Schemas.Rollout.init),
            driver: .init(s.driver),
            denylist: s.denylist.map { .init(release: $0.releaseId, commit: $0.commit, retryEpoch: $0.retryEpoch, at: $0.at, reason: $0.reason) })
    }
}

extension Components.Schemas.Rollout {
    init(_ e: PolicyExplanation) {
        self.init(
            release: e.release, commit: e.commit, bucket: e.bucket, wave: e.wave, waveIndex: e.waveIndex, eligibleAt: e.eligibleAt,
            eligible: e.eligible, windowOpen: e.windowOpen, nextWindow: e.nextWindow,
            waitingFor: e.waitingFor.flatMap { .init(rawValue: $0.rawValue) }, reason: e.reason)
    }
}

extension Components.Schemas.UpdateDriver {
    init(_ r: DriverRecord) {
        self.init(
            state: .init(rawValue: r.state.rawValue) ?? .idle, release: r.releaseId, commit: r.commit, previousCommit: r.previousCommit,
            attempts: r.attempts, lockHeld: r.lockHeld, reason: r.reason, since: r.since)
    }
}
