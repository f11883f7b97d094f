import APTLayerEngine
import APTLayerFleet
import APTLayerModel
import Foundation

extension UpdateDriver {
    /// Where accepted bundles are kept (a USB stick may be removed before the release is staged):
    /// the engine's bundle directory, where it looks for pinned images.
    var bundleStore: String { Engine(options: engineOptions).bundleDirectory }

    /// Reads each new `*.bundle` in the bundles directory (by name): its signed policy goes through
    /// the same trust checks as a fetched one (signers, threshold, fleet, version, expiry). An
    /// accepted bundle is copied to ``bundleStore`` first, and the releases' images are staged from
    /// that copy; older stored bundles are removed. A bundle already seen (same path, size and
    /// modification time) is not read again.
    func pollBundles(now: Date) async {
        guard let directory = configuration.bundles else { return }
        let manager = FileManager.default
        let names = ((try? manager.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(PolicyBundle.suffix) }.sorted()
        for name in names {
            let path = "\(directory)/\(name)"
            guard let attributes = try? manager.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular
            else { continue }
            let key = "\(path) \(attributes[.size] ?? 0) \((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
            guard seenBundles.insert(key).inserted else { continue }
            let contents: (policy: Data, signature: String)
            do { contents = try PolicyBundle.read(path) } catch {
                noteFetch(.rejected, error.description, at: now)
                reject(kind: "bundle", message: error.description, version: nil, now: now)
                continue
            }
            let version = (try? FleetPolicy.decode(contents.policy))?.version ?? 0
            let stored = "\(bundleStore)/policy-\(version)\(PolicyBundle.suffix)"
            let accepted = policy?.bytes == contents.policy
            if accepted && manager.fileExists(atPath: stored) {
                noteFetch(.unchanged, "bundle \(name): unchanged (version \(version))", at: now)
                continue
            }
            // Judged before anything is copied: a bundle the trust checks refuse is journaled as a
            // refusal (by accept) and never stored.
            // (A policy already accepted, fetched from policy-url or stored before a failed
            // rename, only needs its bundle stored.)
            guard accepted || verifies(contents.policy, signature: contents.signature, now: now) else {
                accept(bytes: contents.policy, signature: contents.signature, etag: nil, now: now)
                continue
            }
            // Kept under a temporary name until the policy is accepted.
            let partial = stored + ".partial"
            do {
                // Off the actor: a bundle is hundreds of megabytes, and the API reads fleet status
                // from this actor meanwhile.
                try await Self.copy(path, to: partial, directory: bundleStore)
            } catch {
                // Read again at the next poll (a full disk may have room by then).
                seenBundles.remove(key)
                try? manager.removeItem(atPath: partial)
                let message = "bundle \(name) cannot be stored in \(bundleStore): \(error)"
                noteFetch(.error, message, at: now)
                reject(kind: "bundle", message: message, version: version, now: now)
                continue
            }
            if !accepted { accept(bytes: contents.policy, signature: contents.signature, etag: nil, now: now) }
            guard policy?.bytes == contents.policy else {
                // It verified a moment ago: the journal failed. Read again at the next poll.
                seenBundles.remove(key)
                try? manager.removeItem(atPath: partial)
                continue
            }
            guard rename(partial, stored) == 0 else {
                // Read again at the next poll (the policy is accepted; the bundle is what is missing).
                seenBundles.remove(key)
                logger.error("fleet bundle not stored", metadata: ["bundle": "\(name)", "errno": "\(errno)"])
                try? manager.removeItem(atPath: partial)
                continue
            }
            for old in (try? manager.contentsOfDirectory(atPath: bundleStore)) ?? [] where "\(bundleStore)/\(old)" != stored {
                try? manager.removeItem(atPath: "\(bundleStore)/\(old)")
            }
            logger.info("fleet bundle accepted", metadata: ["bundle": "\(name)", "version": "\(version)"])
        }
    }

    /// The refspec a release's image is pulled from: the registry reference, by digest. The engine
    /// reads a pinned image from its cache or from a stored bundle holding it before asking the
    /// registry, so an offline host needs no route to it; the origin keeps the registry reference.
    func imageRefspec(_ image: String) -> String { "ostree-unverified-registry:\(image.dropFirst("docker://".count))" }
}

extension UpdateDriver {
    /// Whether `bytes` would be accepted now (signers, threshold, fleet, version, expiry), without
    /// journaling anything.
    func verifies(_ bytes: Data, signature: String, now: Date) -> Bool {
        guard let text = try? String(contentsOfFile: configuration.signers, encoding: .utf8), let signers = try? AllowedSigners(text) else {
            return false
        }
        let trust = PolicyTrust(signers: signers, threshold: configuration.threshold, fleet: configuration.name)
        return (try? trust.accept(bytes, signature: signature, last: policy, now: now)) != nil
    }
}

extension UpdateDriver {
    /// Copies `source` to `destination` (replacing a leftover) on a thread of its own, off the
    /// cooperative pool (`Engine.run`), as every blocking step of the agent.
    nonisolated static func copy(_ source: String, to destination: String, directory: String) async throws {
        try await Engine.run { _ in
            let manager = FileManager.default
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? manager.removeItem(atPath: destination)
            try manager.copyItem(atPath: source, toPath: destination)
        }
    }
}
