import APTLayerFleet
import APTLayerModel
import Foundation

extension UpdateDriver {
    /// Where accepted bundles are kept (a USB stick may be removed before the release is staged):
    /// `ostree/apt-layer/bundles` of the sysroot.
    var bundleStore: String {
        let root = engineOptions.sysroot == "/" ? "" : engineOptions.sysroot
        return "\(root)/\(Layout.stateDirectory)/bundles"
    }

    /// The stored bundle of the accepted policy `version`, if it came in one.
    func storedBundle(version: Int64) -> String? {
        let path = "\(bundleStore)/policy-\(version)\(PolicyBundle.suffix)"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Reads each new `*.bundle` in the bundles directory (by name): its signed policy goes through
    /// the same trust checks as a fetched one (signers, threshold, fleet, version, expiry). An
    /// accepted bundle is copied to ``bundleStore`` first, and the releases' images are staged from
    /// that copy; older stored bundles are removed. A bundle already seen (same path, size and
    /// modification time) is not read again.
    func pollBundles(now: Date) {
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
            if let policy, policy.bytes == contents.policy {
                noteFetch(.unchanged, "bundle \(name): unchanged (version \(policy.policy.version))", at: now)
                continue
            }
            // Kept under a temporary name until the policy is accepted.
            let version = (try? FleetPolicy.decode(contents.policy))?.version ?? 0
            let stored = "\(bundleStore)/policy-\(version)\(PolicyBundle.suffix)"
            let partial = stored + ".partial"
            do {
                try manager.createDirectory(atPath: bundleStore, withIntermediateDirectories: true)
                try? manager.removeItem(atPath: partial)
                try manager.copyItem(atPath: path, toPath: partial)
            } catch {
                let message = "bundle \(name) cannot be stored in \(bundleStore): \(error)"
                noteFetch(.error, message, at: now)
                reject(kind: "bundle", message: message, version: version, now: now)
                continue
            }
            accept(bytes: contents.policy, signature: contents.signature, etag: nil, now: now)
            guard policy?.bytes == contents.policy else {
                try? manager.removeItem(atPath: partial)
                continue
            }
            try? manager.removeItem(atPath: stored)
            do { try manager.moveItem(atPath: partial, toPath: stored) } catch {
                logger.error("fleet bundle not stored", metadata: ["bundle": "\(name)", "error": "\(error)"])
                continue
            }
            for old in (try? manager.contentsOfDirectory(atPath: bundleStore)) ?? [] where "\(bundleStore)/\(old)" != stored {
                try? manager.removeItem(atPath: "\(bundleStore)/\(old)")
            }
            logger.info("fleet bundle accepted", metadata: ["bundle": "\(name)", "version": "\(version)"])
        }
    }

    /// The refspec a release's image is pulled from: the stored bundle of the accepted policy
    /// when it came in one, else the registry, by digest either way.
    func imageRefspec(_ image: String, policyVersion: Int64) -> String {
        let digest = image.split(separator: "@", maxSplits: 1).last.map(String.init) ?? ""
        if let bundle = storedBundle(version: policyVersion) {
            return "ostree-unverified-image:oci-archive:\(bundle):\(digest.dropFirst("sha256:".count))@\(digest)"
        }
        return "ostree-unverified-registry:\(image.dropFirst("docker://".count))"
    }
}
