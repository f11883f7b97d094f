import Foundation
import TestSupport
import Testing

@testable import APTLayerFleet

/// `apt-layer policy verify` and `apt-layer policy explain`, run as the binary a person runs, with
/// every number recomputed independently in Python from docs/fleet.md.
@Suite("apt-layer policy", .asRoot, .offPool)
struct PolicyCommandTests {
    @Test func verifyAcceptsASignedPolicyAndRefusesATamperedOneInOneLine() throws {
        let keys = try PolicyTrustTests.Keys()
        let path = try keys.policy(version: 7)
        _ = try keys.sign(path, by: ["alice"])
        let ok = try Shell.status("\(Paths.cli) policy verify \(path) --signature \(path).sig --signers \(keys.dir)/allowed_signers")
        #expect(ok.0 == 0, "\(ok.1)")
        #expect(ok.1.contains("version 7 valid: signed by alice@acme"))

        let two = try Shell.status(
            "\(Paths.cli) policy verify \(path) --signature \(path).sig --signers \(keys.dir)/allowed_signers --threshold 2 2>&1")
        #expect(two.0 == 1)
        #expect(two.1 == "error: \(path): policy signed by 1 trusted key(s); 2 required\n")

        let fleet = try Shell.status(
            "\(Paths.cli) policy verify \(path) --signature \(path).sig --signers \(keys.dir)/allowed_signers --fleet other 2>&1")
        #expect(fleet.0 == 1 && fleet.1.hasPrefix("error: ") && fleet.1.contains("fleet acme-prod"), "\(fleet.1)")

        try Shell.run("echo '# appended' >> \(path)")
        let tampered = try Shell.status("\(Paths.cli) policy verify \(path) --signature \(path).sig --signers \(keys.dir)/allowed_signers 2>&1")
        #expect(tampered.0 == 1)
        #expect(tampered.1.split(separator: "\n").count == 1 && tampered.1.contains("0 trusted key(s)"), "\(tampered.1)")
    }

    /// Python's reading of the pinned algorithm, from the same policy values.
    static let python = #"""
        import hmac, hashlib, sys, json, datetime
        mid, fleet, salt = sys.argv[1], sys.argv[2], sys.argv[3]
        host = hmac.new(mid.encode(), b"apt-layer/host-id/v1", hashlib.sha256).hexdigest()[:32]
        d = hashlib.sha256(b"apt-layer/bucket/v1\0" + fleet.encode() + b"\0" + salt.encode() + b"\0" + host.encode()).digest()
        bucket = int.from_bytes(d[:8], "big") % 10000
        waves = [("canary", 100, 0, 0), ("early", 1000, 86400, 0), ("broad", 10000, 3 * 86400, 2 * 86400)]
        published = datetime.datetime(2026, 12, 1, 10, tzinfo=datetime.timezone.utc)
        prev = 0
        for name, until, after, ramp in waves:
            if bucket < until:
                start = published + datetime.timedelta(seconds=after + ramp * (bucket - prev) // (until - prev))
                break
            prev = until
        print(json.dumps({"hostId": host, "bucket": bucket, "wave": name, "eligibleAt": start.strftime("%Y-%m-%dT%H:%M:%SZ")}))
        """#

    @Test func explainMatchesAnIndependentComputation() throws {
        let keys = try PolicyTrustTests.Keys()
        let path = try keys.policy(version: 3)
        try Self.python.write(toFile: "\(keys.dir)/explain.py", atomically: true, encoding: .utf8)
        var waves: Set<String> = []
        for n in 0..<40 {
            let machineID = String(format: "%032x", n * 7_919 + 12345)
            let expected = try Shell.run("python3 \(keys.dir)/explain.py \(machineID) acme-prod stable")
            let out = try Shell.run("\(Paths.cli) policy explain \(path) --machine-id \(machineID) --stream stable --at 2026-12-02T12:00:00Z --json")
            let got = try #require(JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
            let want = try #require(JSONSerialization.jsonObject(with: Data(expected.utf8)) as? [String: Any])
            for key in ["hostId", "wave", "eligibleAt"] { #expect(got[key] as? String == want[key] as? String, "\(key) for \(machineID)") }
            #expect(got["bucket"] as? Int == want["bucket"] as? Int)
            waves.insert(want["wave"] as? String ?? "")
        }
        // 40 hosts of 10000 buckets: mostly broad, some early; enough to show the wave boundary matters.
        #expect(waves.contains("broad") && waves.count >= 2, "\(waves)")
    }

    @Test func explainSaysWhyTheHostWaits() throws {
        let keys = try PolicyTrustTests.Keys()
        let policy = try FleetPolicy.decode(Data(contentsOf: URL(fileURLWithPath: try keys.policy(version: 3))))
        // Find hosts in each wave.
        func host(inWave name: String) throws -> String {
            for n in 0..<100_000 {
                let id = try HostIdentity.hostID(machineID: String(format: "%032x", n))
                if policy.explain(stream: "stable", hostID: id, at: .now).wave == name { return id }
            }
            throw PolicyError.invalid("no host in \(name)")
        }
        let canary = try host(inWave: "canary")
        let broad = try host(inWave: "broad")
        let early = try host(inWave: "early")
        let date = { (s: String) in try Date(s, strategy: .iso8601) }
        // Tue 2026-12-01 03:00 Berlin = 02:00 UTC: inside the 02:00-05:00 Berlin window.
        #expect(policy.explain(stream: "stable", hostID: canary, at: try date("2026-12-01T11:00:00Z")).waitingFor == .outsideWindow)
        let inWindow = policy.explain(stream: "stable", hostID: canary, at: try date("2026-12-03T02:00:00Z"))
        #expect(inWindow.waitingFor == nil && inWindow.eligible && inWindow.windowOpen, "\(inWindow)")
        #expect(policy.explain(stream: "stable", hostID: early, at: try date("2026-12-01T11:00:00Z")).waitingFor == .notEligibleYet)
        #expect(policy.explain(stream: "stable", hostID: broad, at: try date("2026-12-10T02:00:00Z")).waitingFor == .waveNotOpen)
        let commit = String(repeating: "9f", count: 32)
        #expect(policy.explain(stream: "stable", hostID: canary, at: .now, current: commit).waitingFor == .upToDate)
        #expect(policy.explain(stream: "stable", hostID: canary, at: try date("2026-12-03T02:00:00Z"), denylisted: true).waitingFor == .denylisted)
        #expect(policy.explain(stream: "other", hostID: canary, at: .now).waitingFor == .noRelease)
        #expect(policy.explain(stream: "stable", hostID: canary, at: try date("2100-01-01T00:00:00Z")).waitingFor == .policyExpired)
        let next = try #require(policy.explain(stream: "stable", hostID: canary, at: try date("2026-12-01T11:00:00Z")).nextWindow)
        #expect(FleetPolicy.format(next) == "2026-12-03T01:00:00Z")
    }
}
