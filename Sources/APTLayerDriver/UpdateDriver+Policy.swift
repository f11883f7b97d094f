import APTLayerFleet
import APTLayerJournal
import Foundation

extension UpdateDriver {
    /// Fetches the policy and reads new offline bundles; accepts a policy, or journals why not and
    /// keeps the last good one.
    func poll() async {
        await advance(.pollStarting)
        let now = Date()
        fetches += 1
        if let fetcher {
            do {
                switch try await fetcher.fetch(etag: etag) {
                case .notModified:
                    noteFetch(.notModified, "not modified", at: now)
                case .document(let bytes, let signature, let newEtag):
                    if let policy, policy.bytes == bytes {
                        noteFetch(.unchanged, "unchanged (version \(policy.policy.version))", at: now)
                    } else {
                        accept(bytes: bytes, signature: signature, etag: newEtag, now: now)
                    }
                }
            } catch {
                noteFetch(.error, error.message, at: now)
                reject(kind: "fetch", message: error.message, version: nil, now: now)
            }
        }
        await pollBundles(now: now)
        await advance(.polled)
    }

    func accept(bytes: Data, signature: String, etag newEtag: String?, now: Date) {
        let trust: PolicyTrust
        do {
            let text = try String(contentsOfFile: configuration.signers, encoding: .utf8)
            trust = PolicyTrust(signers: try AllowedSigners(text), threshold: configuration.threshold, fleet: configuration.name)
        } catch {
            let message = "cannot read the trusted signers \(configuration.signers): \(error)"
            noteFetch(.rejected, message, at: now)
            reject(kind: "signature", message: message, version: nil, now: now)
            return
        }
        do {
            let accepted = try trust.accept(bytes, signature: signature, last: policy, now: now)
            let row = PolicyRecord(
                fleet: accepted.policy.fleet, version: accepted.policy.version, bytes: bytes, signature: signature,
                signers: accepted.signers.joined(separator: ","), etag: newEtag, acceptedAt: now)
            _ = try journal.recordAccepted(row)
            policy = accepted
            policyAcceptedAt = now
            etag = newEtag
            noteFetch(.accepted, "accepted version \(accepted.policy.version)", at: now)
            logger.info("fleet policy accepted", metadata: ["version": "\(accepted.policy.version)", "signers": "\(row.signers)"])
            clearDenylistOnNewEpoch()
        } catch let error as PolicyError {
            let version = try? FleetPolicy.decode(bytes).version
            noteFetch(.rejected, error.description, at: now)
            reject(kind: error.kind, message: error.description, version: version, now: now)
        } catch {
            noteFetch(.error, "journal: \(error)", at: now)
            logger.error("fleet policy not journaled", metadata: ["error": "\(error)"])
        }
    }

    func noteFetch(_ outcome: FleetStatus.FetchOutcome, _ message: String, at now: Date) {
        lastFetch = .init(at: now, outcome: outcome, message: message, count: fetches)
        fetchOutcomes[outcome, default: 0] += 1
    }

    func reject(kind: String, message: String, version: Int64?, now: Date) {
        logger.warning("fleet policy refused", metadata: ["kind": "\(kind)", "reason": "\(message)"])
        try? journal.recordRejection(PolicyRejectionRecord(at: now, kind: kind, message: message, version: version))
    }

    /// A signed policy that raises a denylisted release's retry epoch lifts the denylist entry.
    private func clearDenylistOnNewEpoch() {
        guard let release = policy?.policy.streams[configuration.stream]?.release,
            let entry = try? journal.denylisted(releaseId: release.id, commit: release.commit), (release.retryEpoch ?? 0) > entry.retryEpoch
        else { return }
        try? journal.removeFromDenylist(releaseId: release.id, commit: release.commit)
        logger.info("fleet release retried: retry-epoch raised", metadata: ["release": "\(release.id)"])
    }
}

extension Error {
    var message: String { "\(self)" }
}
