import Foundation
import TestSupport
import Testing

@testable import APTLayerFleet

/// Signed policies: signatures made by the real `ssh-keygen -Y sign`, checked by our verifier, and
/// our verdicts compared with `ssh-keygen -Y verify`; every rejection of docs/fleet.md.
@Suite("Policy signatures and acceptance", .tags(.fast))
struct PolicyTrustTests {
    /// A directory with three ed25519 keys, an allowed_signers file trusting the first two, and a
    /// policy writer.
    final class Keys {
        let dir: String
        init() throws {
            dir = try Shell.run("mktemp -d /tmp/apt-layer-policy.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
            for name in ["alice", "bob", "mallory"] { try Shell.run("ssh-keygen -q -t ed25519 -N '' -C \(name) -f \(dir)/\(name)") }
            let alice = try String(contentsOfFile: "\(dir)/alice.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
            let bob = try String(contentsOfFile: "\(dir)/bob.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
            try "alice@acme namespaces=\"apt-layer-policy\" \(alice)\n# comment\nbob@acme \(bob)\n".write(
                toFile: "\(dir)/allowed_signers", atomically: true, encoding: .utf8)
        }
        deinit { _ = try? Shell.run("rm -rf \(dir)") }

        func policy(version: Int, fleet: String = "acme-prod", expires: String = "2099-01-01T00:00:00Z", note: String = "") throws -> String {
            let path = "\(dir)/policy-\(version)\(note).yaml"
            try """
            apiVersion: apt-layer/v1
            kind: FleetPolicy
            fleet: \(fleet)
            version: \(version)
            expires: \(expires)
            remote: {name: acme, url: "http://127.0.0.1:8000/repo"}
            streams:
              stable:
                ref: acme/bookworm/x86_64/stable
                salt: stream
                release:
                  id: "2026.12.1\(note)"
                  commit: \(String(repeating: "9f", count: 32))
                  published: 2026-12-01T10:00:00Z
                  open-through-wave: 1
                  waves:
                    - {name: canary, until: 100, start-after: 0h}
                    - {name: early, until: 1000, start-after: 24h}
                    - {name: broad, until: 10000, start-after: 72h, ramp: 48h}
            windows:
              - {days: [Tue, Thu], start: "02:00", length: 3h, tz: Europe/Berlin}

            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// Signs with `signers`, concatenating their signature blocks.
        func sign(_ path: String, by signers: [String], namespace: String = "apt-layer-policy") throws -> String {
            var armored = ""
            for signer in signers {
                try Shell.run("rm -f \(path).sig && ssh-keygen -q -Y sign -f \(dir)/\(signer) -n \(namespace) \(path)")
                armored += try String(contentsOfFile: "\(path).sig", encoding: .utf8)
            }
            return armored
        }

        func trust(threshold: Int) throws -> PolicyTrust {
            PolicyTrust(
                signers: try AllowedSigners(String(contentsOfFile: "\(dir)/allowed_signers", encoding: .utf8)), threshold: threshold,
                fleet: "acme-prod")
        }
    }

    @Test func aPolicySignedWithSSHKeygenIsAcceptedAndMatchesItsVerdict() throws {
        let keys = try Keys()
        let path = try keys.policy(version: 1)
        let signature = try keys.sign(path, by: ["alice"])
        let accepted = try keys.trust(threshold: 1).accept(Data(contentsOf: URL(fileURLWithPath: path)), signature: signature, last: nil)
        #expect(accepted.policy.version == 1)
        #expect(accepted.signers == ["alice@acme"])
        #expect(accepted.policy.streams["stable"]?.release?.waves.count == 3)
        #expect(accepted.policy.windows?.first?.tz == "Europe/Berlin")
        // ssh-keygen agrees.
        try Shell.run("ssh-keygen -Y verify -f \(keys.dir)/allowed_signers -I alice@acme -n apt-layer-policy -s \(path).sig < \(path)")
    }

    @Test func tamperedBytesUntrustedKeysAndWrongNamespacesAreRejected() throws {
        let keys = try Keys()
        let path = try keys.policy(version: 1)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let trust = try keys.trust(threshold: 1)
        // One byte changed after signing: ssh-keygen refuses it too.
        let signature = try keys.sign(path, by: ["alice"])
        var tampered = bytes
        tampered[tampered.count - 2] ^= 0x01
        #expect(throws: PolicyError.belowThreshold(valid: 0, threshold: 1)) { try trust.accept(tampered, signature: signature, last: nil) }
        try tampered.write(to: URL(fileURLWithPath: "\(path).tampered"))
        #expect(throws: Shell.Failure.self) {
            try Shell.run("ssh-keygen -Y verify -f \(keys.dir)/allowed_signers -I alice@acme -n apt-layer-policy -s \(path).sig < \(path).tampered")
        }
        // A key not in allowed_signers.
        #expect(throws: PolicyError.belowThreshold(valid: 0, threshold: 1)) {
            try trust.accept(bytes, signature: try keys.sign(path, by: ["mallory"]), last: nil)
        }
        // Another namespace.
        #expect(throws: PolicyError.belowThreshold(valid: 0, threshold: 1)) {
            try trust.accept(bytes, signature: try keys.sign(path, by: ["alice"], namespace: "file"), last: nil)
        }
        #expect(throws: PolicyError.self) { try trust.accept(bytes, signature: "not a signature", last: nil) }
    }

    @Test func thresholdCountsDistinctTrustedKeys() throws {
        let keys = try Keys()
        let path = try keys.policy(version: 1)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let trust = try keys.trust(threshold: 2)
        #expect(throws: PolicyError.belowThreshold(valid: 1, threshold: 2)) {
            try trust.accept(bytes, signature: try keys.sign(path, by: ["alice"]), last: nil)
        }
        #expect(throws: PolicyError.belowThreshold(valid: 1, threshold: 2)) {
            try trust.accept(bytes, signature: try keys.sign(path, by: ["alice", "alice"]), last: nil)
        }
        #expect(throws: PolicyError.belowThreshold(valid: 1, threshold: 2)) {
            try trust.accept(bytes, signature: try keys.sign(path, by: ["alice", "mallory"]), last: nil)
        }
        let accepted = try trust.accept(bytes, signature: try keys.sign(path, by: ["bob", "alice"]), last: nil)
        #expect(Set(accepted.signers) == ["alice@acme", "bob@acme"])
    }

    @Test func versionFleetExpiryAndEquivocation() throws {
        let keys = try Keys()
        let trust = try keys.trust(threshold: 1)
        func accept(_ path: String, last: AcceptedPolicy?, now: Date = Date()) throws -> AcceptedPolicy {
            try trust.accept(Data(contentsOf: URL(fileURLWithPath: path)), signature: try keys.sign(path, by: ["bob"]), last: last, now: now)
        }
        let v2 = try accept(try keys.policy(version: 2), last: nil)
        #expect(throws: PolicyError.notNewer(version: 1, accepted: 2)) { try accept(try keys.policy(version: 1), last: v2) }
        #expect(throws: PolicyError.equivocation(version: 2)) { try accept(try keys.policy(version: 2, note: "b"), last: v2) }
        // The very same bytes again are not newer, and not an alarm.
        #expect(throws: PolicyError.notNewer(version: 2, accepted: 2)) { try accept(try keys.policy(version: 2), last: v2) }
        #expect(throws: PolicyError.wrongFleet(expected: "acme-prod", got: "acme-lab")) {
            try accept(try keys.policy(version: 3, fleet: "acme-lab"), last: v2)
        }
        #expect(throws: PolicyError.self) { try accept(try keys.policy(version: 3, expires: "2020-01-01T00:00:00Z"), last: v2) }
        #expect(try accept(try keys.policy(version: 3), last: v2).policy.version == 3)
    }

    @Test func malformedPoliciesAreInvalid() throws {
        let keys = try Keys()
        let trust = try keys.trust(threshold: 1)
        for (i, text) in [
            "not: [yaml", "apiVersion: apt-layer/v2\nkind: FleetPolicy\nfleet: acme-prod\nversion: 1\nexpires: 2099-01-01T00:00:00Z\nstreams: {}\n",
        ]
        .enumerated() {
            let path = "\(keys.dir)/bad-\(i).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let error = try #require(throws: PolicyError.self) {
                try trust.accept(Data(contentsOf: URL(fileURLWithPath: path)), signature: try keys.sign(path, by: ["alice"]), last: nil)
            }
            guard case .invalid = error else { Issue.record("expected invalid, got \(error)"); continue }
        }
    }
}
