import APTLayerFleet
import Foundation
import TestSupport
import Testing

/// Offline bundles (issue 23, part 3; docs/images.md): `bundle create` packs a signed policy with
/// the image its release pins (pulled from a real registry with TLS); the registry then goes away
/// and an agent with no policy URL, only `fleet.bundles`, takes the bundle `bundle apply` queued:
/// it accepts the policy through the same trust checks as a fetched one and deploys the release
/// from the bundle, the exact commit; a bundle signed by an untrusted key is refused and changes
/// nothing.
@Suite("offline bundles through the agent", .serialized, .asRoot, .offPool)
struct BundleTests {
    static func policy(version: Int, commit: String, image: String) -> String {
        """
        apiVersion: apt-layer/v1
        kind: FleetPolicy
        fleet: acme-prod
        version: \(version)
        expires: 2099-01-01T00:00:00Z
        streams:
          stable:
            ref: acme/stable
            salt: stream
            release:
              id: "2026.12.\(version)"
              commit: \(commit)
              image: "\(image)"
              published: 2026-01-01T00:00:00Z
              open-through-wave: 0
              waves:
                - {name: all, until: 10000, start-after: 0s}
        """
    }

    /// Writes and signs a policy; returns its path (the signature is PATH.sig).
    static func sign(_ text: String, keys: PolicyKeys, signer: String = "alice", name: String) throws -> String {
        let path = "\(keys.dir)/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try Shell.run("rm -f \(path).sig && ssh-keygen -q -Y sign -f \(keys.dir)/\(signer) -n apt-layer-policy \(path)")
        return path
    }

    @Test func anOfflineHostTakesTheReleaseFromABundle() throws {
        let bed = try TestBed()
        let registry = try TestRegistry(bed)
        defer { registry.stop() }
        let keys = try PolicyKeys(directory: "\(bed.fixtures)/keys")
        let n1 = try bed.composeBase(version: "2.0", note: "two")
        let pushed = try Shell.run("\(Paths.cli) compose oci -q --sysroot \(bed.sysroot) --ref \(n1) docker://\(registry.host)/acme/base:2")
        let digest = try #require(pushed.split(separator: " ").first { $0.hasPrefix("sha256:") }.map(String.init), "\(pushed)")
        let image = "docker://\(registry.host)/acme/base@\(digest)"
        let policy = try Self.sign(Self.policy(version: 1, commit: n1, image: image), keys: keys, name: "policy")
        let bundle = "\(bed.fixtures)/site.bundle"
        let created = try Shell.run(
            "\(Paths.cli) bundle create -q --sysroot \(bed.sysroot) --policy \(policy) --signature \(policy).sig \(bundle)")
        #expect(created.contains("policy acme-prod version 1, 1 image(s)"), "\(created)")
        // The bundle is an OCI archive skopeo reads by the digest's hex.
        let inspected = try Shell.run("skopeo inspect --raw oci-archive:\(bundle):\(digest.dropFirst(7)) | sha256sum")
        #expect(inspected.hasPrefix(String(digest.dropFirst(7))), "\(inspected)")
        // The same release signed by a key the host does not trust (bundle create does not judge
        // signatures: the site's hosts do).
        let forged = try Self.sign(Self.policy(version: 2, commit: n1, image: image), keys: keys, signer: "mallory", name: "forged")
        try Shell.run(
            "\(Paths.cli) bundle create -q --sysroot \(bed.sysroot) --policy \(forged) --signature \(forged).sig \(bed.fixtures)/forged.bundle")
        registry.stop()

        // Signers this host does not have: bundle apply refuses it and queues nothing.
        let queue = "\(bed.fixtures)/bundles"
        let refusedApply = try Shell.status("\(Paths.cli) bundle apply \(bundle) --directory \(queue) --signers /nonexistent")
        #expect(refusedApply.0 != 0 && refusedApply.1.hasPrefix("error: "), "\(refusedApply.1)")
        #expect(!FileManager.default.fileExists(atPath: queue))

        let applied = try Shell.run("\(Paths.cli) bundle apply \(bundle) --directory \(queue) --signers \(keys.signers)")
        #expect(applied.contains("Queued \(queue)/site.bundle: policy acme-prod version 1, signed by alice@acme"), "\(applied)")

        try "5f0c3a1e9b7d4c2a8e6f1b3d5a7c9e0f\n".write(toFile: "\(bed.fixtures)/machine-id", atomically: true, encoding: .utf8)
        let agent = try AgentBed(
            bed: bed,
            extraConfig: """
                fleet:
                  name: acme-prod
                  stream: stable
                  bundles: \(queue)
                  signers: \(keys.signers)
                  poll-interval: 1h
                  machine-id-file: \(bed.fixtures)/machine-id
                  reboot-command: [/bin/true]
                """)
        var status = ""
        for _ in 0..<600 {
            status = try Shell.run("\(Paths.cli) status --sysroot \(bed.sysroot)")
            if status.contains(n1) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let policyState = try agent.request("GET", "/v1/policy", as: "reader").json
        #expect((policyState["policy"] as? [String: Any])?["version"] as? Int == 1, "\(policyState)\n\(agent.logText)")
        #expect(status.contains("Commit: \(n1)"), "the release deployed from the bundle: \(status)\n\(agent.logText)")
        // The origin names the registry image by digest; it was read from the stored bundle.
        let origins = try Shell.run("cat \(bed.sysroot)/ostree/deploy/debian/deploy/*.origin")
        #expect(origins.contains("container-image-reference=ostree-unverified-registry:\(registry.host)/acme/base@\(digest)"), "\(origins)")
        #expect(origins.contains("container-image-digest=\(digest)"), "\(origins)")
        #expect(FileManager.default.fileExists(atPath: "\(bed.sysroot)/ostree/apt-layer/bundles/policy-1.bundle"))
        // The pull's progress reaches the event stream: the layers copied out of the stored bundle
        // (the commit itself is this bed's own, so nothing is imported).
        let history = try agent.request("GET", "/v1/transactions?limit=20", as: "reader").json["transactions"] as? [[String: Any]] ?? []
        let rebase = try #require(history.first { $0["operation"] as? String == "rebase" }?["id"] as? String, "\(history)")
        let events = try agent.request("GET", "/v1/transactions/\(rebase)/events", as: "reader", extra: "--max-time 10").body
        #expect(
            events.contains("layers of docker://\(registry.host)/acme/base")
                && events.contains(" from \(bed.sysroot)/ostree/apt-layer/bundles/policy-1.bundle"), "\(events)")
        // Offline afterwards too: the pinned image is in the host's cache.
        let check = try Shell.run("\(Paths.cli) upgrade --check --sysroot \(bed.sysroot)")
        #expect(check.contains("No change: ostree-unverified-registry:\(registry.host)/acme/base@\(digest) is still \(digest)"), "\(check)")

        // A forged bundle dropped in the directory (a USB stick) is refused; version 1 stays.
        let refused = try Shell.status("\(Paths.cli) bundle apply \(bed.fixtures)/forged.bundle --directory \(queue) --signers \(keys.signers)")
        #expect(refused.0 != 0 && refused.1.contains("signed by 0 trusted key(s); 1 required"), "\(refused.1)")
        try Shell.run("cp \(bed.fixtures)/forged.bundle \(queue)/forged.bundle")
        #expect(try agent.request("POST", "/v1/policy/refresh", as: "operator").status == 202)
        var rejected: [String: Any] = [:]
        for _ in 0..<200 {
            rejected = try agent.request("GET", "/v1/policy", as: "reader").json
            if (rejected["rejections"] as? [[String: Any]])?.isEmpty == false { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect((rejected["rejections"] as? [[String: Any]])?.first?["kind"] as? String == "below-threshold", "\(rejected)")
        #expect((rejected["policy"] as? [String: Any])?["version"] as? Int == 1)
        #expect(try Shell.run("ls \(bed.sysroot)/ostree/apt-layer/bundles") == "policy-1.bundle\n", "only the accepted bundle is kept")
    }
}
