import Foundation
import TestSupport
import Testing

@testable import APTLayerFleet

/// The pinned host-id and bucket algorithm, recomputed independently with Python's hmac/hashlib,
/// and the wave arithmetic at its edges.
@Suite("Host identity, buckets and waves", .tags(.fast))
struct FleetIdentityTests {
    static let machineIDs = ["0123456789abcdef0123456789abcdef", "ffffffffffffffffffffffffffffffff", "5f3c0a1b2d4e6f708192a3b4c5d6e7f8"]

    @Test(arguments: machineIDs)
    func hostIDAndBucketMatchAnIndependentImplementation(_ machineID: String) throws {
        let hostID = try HostIdentity.hostID(machineID: machineID + "\n")
        let python = """
            import hmac, hashlib, sys
            m = sys.argv[1]
            h = hmac.new(m.encode(), b"apt-layer/host-id/v1", hashlib.sha256).hexdigest()[:32]
            d = hashlib.sha256(b"apt-layer/bucket/v1\\0acme-prod\\0stable\\0" + h.encode()).digest()
            print(h, int.from_bytes(d[:8], "big") % 10000)
            """
        let expected = try Shell.run("python3 -c '\(python)' \(machineID)").split(separator: " ")
        #expect(hostID == String(expected[0]))
        #expect(hostID.count == 32)
        let bucket = HostIdentity.bucket(fleet: "acme-prod", salt: "stable", hostID: hostID)
        #expect(bucket == Int(expected[1].trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect((0..<10000).contains(bucket))
    }

    @Test func badMachineIDsAreRefused() {
        for bad in ["", "0123", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg"] {
            #expect(throws: HostIdentity.InvalidMachineID.self) { try HostIdentity.hostID(machineID: bad) }
        }
    }

    @Test func bucketsSpreadOverTheRange() throws {
        var counts = [0, 0, 0, 0]
        for i in 0..<2000 {
            let id = try HostIdentity.hostID(machineID: String(format: "%032x", i))
            counts[HostIdentity.bucket(fleet: "f", salt: "s", hostID: id) / 2500] += 1
        }
        // 2000 draws in four quarters: each near 500 (a skewed algorithm would miss by far).
        #expect(counts.allSatisfy { (400...600).contains($0) }, "\(counts)")
    }

    static let waves = [
        Wave(name: "canary", until: 100, startAfter: PolicyDuration(seconds: 0)),
        Wave(name: "early", until: 1000, startAfter: PolicyDuration(seconds: 86400)),
        Wave(name: "broad", until: 10000, startAfter: PolicyDuration(seconds: 3 * 86400), ramp: PolicyDuration(seconds: 2 * 86400)),
    ]

    @Test func wavesAtTheirEdges() throws {
        let published = Date(timeIntervalSince1970: 1_800_000_000)
        let cases: [(Int, String, Int)] = [
            (0, "canary", 0), (99, "canary", 0), (100, "early", 86400), (999, "early", 86400),
            (1000, "broad", 3 * 86400), (5500, "broad", 3 * 86400 + 86400), (9999, "broad", 3 * 86400 + 2 * 86400 * 8999 / 9000),
        ]
        for (bucket, name, offset) in cases {
            let position = try #require(Wave.position(of: bucket, in: Self.waves, published: published))
            #expect(position.name == name, "bucket \(bucket)")
            #expect(position.start.timeIntervalSince(published) == Double(offset), "bucket \(bucket)")
        }
        #expect(Wave.position(of: 50, in: Array(Self.waves.dropFirst()), published: published)?.name == "early")
        #expect(throws: PolicyError.self) { try Wave.validate([Self.waves[1], Self.waves[0]]) }
    }

    @Test func durations() {
        #expect(PolicyDuration("90s")?.seconds == 90)
        #expect(PolicyDuration("1h30m")?.seconds == 5400)
        #expect(PolicyDuration("2d")?.seconds == 172_800)
        #expect(PolicyDuration("0h")?.seconds == 0)
        for bad in ["", "h", "10", "10x", "-1h", "1.5h"] { #expect(PolicyDuration(bad) == nil, "\(bad)") }
    }
}

/// Weekly windows in IANA zones: union, DST, next opening.
@Suite("Maintenance windows", .tags(.fast))
struct MaintenanceWindowTests {
    static func utc(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }

    @Test func berlinWindowAcrossDaylightSavingTime() {
        let windows = [MaintenanceWindow(days: ["Tue", "Thu"], start: "02:00", length: PolicyDuration(seconds: 3 * 3600), tz: "Europe/Berlin")]
        // Winter (UTC+1): Tue 2026-01-06 02:00 Berlin = 01:00 UTC.
        #expect(!windows.isOpen(at: Self.utc("2026-01-06T00:59:59Z")))
        #expect(windows.isOpen(at: Self.utc("2026-01-06T01:00:00Z")))
        #expect(windows.isOpen(at: Self.utc("2026-01-06T03:59:59Z")))
        #expect(!windows.isOpen(at: Self.utc("2026-01-06T04:00:00Z")))
        // Summer (UTC+2): Tue 2026-07-07 02:00 Berlin = 00:00 UTC.
        #expect(windows.isOpen(at: Self.utc("2026-07-07T00:00:00Z")))
        #expect(!windows.isOpen(at: Self.utc("2026-07-07T03:00:00Z")))
        // Wednesday is closed; the next opening is Thursday 02:00 Berlin.
        #expect(windows.nextOpening(after: Self.utc("2026-07-08T12:00:00Z")) == Self.utc("2026-07-09T00:00:00Z"))
    }

    @Test func startInTheSpringForwardGapMovesToTheNextValidInstant() {
        // 2026-03-29 (Sun): Berlin skips 02:00-03:00. A 02:30 start opens at 03:00 CEST = 01:00 UTC.
        let windows = [MaintenanceWindow(days: ["Sun"], start: "02:30", length: PolicyDuration(seconds: 3600), tz: "Europe/Berlin")]
        #expect(windows.nextOpening(after: Self.utc("2026-03-28T12:00:00Z")) == Self.utc("2026-03-29T01:00:00Z"))
        #expect(!windows.isOpen(at: Self.utc("2026-03-29T00:59:00Z")))
        #expect(windows.isOpen(at: Self.utc("2026-03-29T01:00:00Z")))
    }

    @Test func unionOfWindowsAndNoWindows() {
        let windows = [
            MaintenanceWindow(days: ["Mon"], start: "22:00", length: PolicyDuration(seconds: 4 * 3600), tz: nil),
            MaintenanceWindow(days: ["Wed"], start: "12:00", length: PolicyDuration(seconds: 3600), tz: "America/New_York"),
        ]
        // Monday 22:00 UTC into Tuesday 02:00.
        #expect(windows.isOpen(at: Self.utc("2026-12-08T01:30:00Z")))
        // Wednesday 12:00 New York (UTC-5) = 17:00 UTC.
        #expect(windows.isOpen(at: Self.utc("2026-12-09T17:30:00Z")))
        #expect(!windows.isOpen(at: Self.utc("2026-12-09T16:59:00Z")))
        #expect([MaintenanceWindow]().isOpen(at: Date()))
        #expect(throws: PolicyError.self) { try MaintenanceWindow(days: ["Funday"], start: "02:00", length: PolicyDuration(seconds: 60)).validate() }
        #expect(throws: PolicyError.self) { try MaintenanceWindow(days: ["Mon"], start: "25:00", length: PolicyDuration(seconds: 60)).validate() }
        #expect(throws: PolicyError.self) {
            try MaintenanceWindow(days: ["Mon"], start: "02:00", length: PolicyDuration(seconds: 60), tz: "Mars/Olympus").validate()
        }
    }
}
