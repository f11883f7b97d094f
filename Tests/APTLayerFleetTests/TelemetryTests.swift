import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import Foundation
import GRDB
import TestSupport
import Testing

@testable import APTLayerTelemetry

/// countme's arithmetic at its edges, the cookie, the User-Agent, OTLP encoding, Retry-After, and
/// the outbox in the journal.
@Suite(.tags(.fast)) struct TelemetryTests {
    /// Monday 2026-11-30 00:00:00 UTC.
    static let monday = Int64(RFC3339.parse("2026-11-30T00:00:00Z")!.timeIntervalSince1970)
    static let week: Int64 = 604_800

    @Test func windowsStartOnMondayMidnightUTC() {
        #expect(Countme.window(Countme.windowOffset) == 0)
        #expect(Countme.window(Countme.windowOffset + Countme.windowWidth - 1) == 0)
        #expect(Countme.window(Countme.windowOffset + Countme.windowWidth) == 1)
        let m = Self.monday
        #expect(Countme.window(m) == Countme.window(m - 1) + 1)
        #expect(Countme.window(m + Self.week - 1) == Countme.window(m))
        #expect(Countme.window(m + Self.week) == Countme.window(m) + 1)
        // 1970-01-05 is a Monday and the windows are whole weeks: every window starts on one.
        #expect((m - Countme.windowOffset) % Countme.windowWidth == 0)
    }

    @Test(arguments: [
        (0, 1), (1, 2), (2, 2), (3, 2), (4, 3), (10, 3), (23, 3), (24, 4), (100, 4),
    ])
    func ageBuckets(weeksLater: Int64, bucket: Int) {
        // Weeks 1 / 2–4 / 5–24 / ≥ 25, counted from the window of the first count.
        #expect(Countme.bucket(epoch: Self.monday + 3600, now: Self.monday + weeksLater * Self.week + 7200) == bucket)
    }

    @Test func oneSecondAcrossMondayIsTheNextWeek() {
        // First counted Sunday 23:59:59, asked again one second later: a new window, age 2.
        let sunday = Self.monday - 1
        let cookie = CountmeCookie(epoch: sunday, window: sunday)
        #expect(Countme.due(cookie, now: Self.monday) == 2)
        #expect(Countme.due(cookie, now: sunday) == nil)
    }

    @Test func countsAtMostOncePerWindow() {
        #expect(Countme.due(nil, now: Self.monday) == 1)
        let cookie = CountmeCookie.counted(nil, now: Self.monday + 10)
        #expect(cookie == CountmeCookie(epoch: Self.monday + 10, window: Self.monday + 10))
        #expect(Countme.due(cookie, now: Self.monday + Self.week - 1) == nil)
        #expect(Countme.due(cookie, now: Self.monday + Self.week) == 2)
        // A clock set back never counts again in an old window.
        #expect(Countme.due(cookie, now: Self.monday - Self.week) == nil)
        let later = CountmeCookie.counted(cookie, now: Self.monday + 5 * Self.week)
        #expect(later.epoch == cookie.epoch)
        // Week 24 of its life (n = 24) is the last in 5–24; week 25 is the first of ≥ 25.
        #expect(Countme.due(later, now: Self.monday + 23 * Self.week) == 3)
        #expect(Countme.due(later, now: Self.monday + 24 * Self.week) == 4)
    }

    @Test func cookieIsWrittenAtomicallyAndRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("countme-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/countme.json"
        #expect(CountmeCookie.load(path) == nil)
        try CountmeCookie(epoch: 1, window: 2).save(path)
        #expect(String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self) == #"{"epoch":1,"window":2}"#)
        #expect(CountmeCookie.load(path) == CountmeCookie(epoch: 1, window: 2))
        try FileManager.default.contents(atPath: path)!.prefix(5).write(to: URL(fileURLWithPath: path))
        #expect(CountmeCookie.load(path) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["countme.json"])
    }

    @Test func userAgentFromOSRelease() {
        let debian = OSRelease(text: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n")
        #expect(debian.userAgent(arch: "x86_64") == "apt-layer (Debian GNU/Linux 12; ; Linux.x86_64)")
        let variant = OSRelease(text: "NAME='Acme OS'\nVERSION_ID=2026.12\nVARIANT_ID=edge\n# comment\n")
        #expect(variant.userAgent(arch: "aarch64") == "apt-layer (Acme OS 2026.12; edge; Linux.aarch64)")
        // Characters that would change the header's shape are dropped.
        let hostile = OSRelease(text: "NAME=\"Evil (x); y\"\nVERSION_ID=\"1\"\nVARIANT_ID=\"a;b\"\n")
        #expect(hostile.userAgent(arch: "x86_64") == "apt-layer (Evil x y 1; ab; Linux.x86_64)")
        #expect(OSRelease(text: "").userAgent(arch: "x86_64") == "apt-layer (Linux; ; Linux.x86_64)")
    }

    @Test func retryAfterSecondsAndHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(RetryAfter.seconds("120", now: now) == 120)
        #expect(RetryAfter.seconds(nil, now: now) == nil)
        #expect(RetryAfter.seconds("soon", now: now) == nil)
        #expect(RetryAfter.seconds("-1", now: now) == nil)
        // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
        #expect(RetryAfter.seconds("Tue, 14 Nov 2023 22:13:50 GMT", now: now) == 30)
        #expect(RetryAfter.seconds("Tue, 14 Nov 2023 22:00:00 GMT", now: now) == 0)
    }

    @Test func anyValueFollowsTheProtobufJSONMapping() throws {
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(#"{"b":true,"i":12,"d":1.5,"s":"x","n":null,"a":[1,"y"]}"#.utf8))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(OTLPLogs.AnyValue(value)), as: UTF8.self)
        #expect(
            json == #"{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"y"}]}}},"#
                + #"{"key":"b","value":{"boolValue":true}},{"key":"d","value":{"doubleValue":1.5}},{"key":"i","value":{"intValue":"12"}},"#
                + #"{"key":"n","value":{}},{"key":"s","value":{"stringValue":"x"}}]}}"#)
    }

    @Test func outboxIsBoundedAndCountsWhatItDrops() throws {
        let journal = try Journal(writer: DatabaseQueue())
        for i in 0..<5 {
            try journal.enqueue(report: Data("{\"n\":\(i)}".utf8), hash: "h\(i)", at: Date(), maxRows: 3)
        }
        let rows = try journal.outbox(limit: 10)
        #expect(rows.map { String(decoding: $0.body, as: UTF8.self) } == [#"{"n":2}"#, #"{"n":3}"#, #"{"n":4}"#])
        #expect(try journal.counters()[.reportsDropped] == 2)
        try journal.outboxSent([rows[0].seq!])
        try journal.deadLetter([rows[1]], status: 400, message: "bad")
        #expect(try journal.outboxStats().count == 1)
        #expect(try journal.counters()[.reportsSent] == 1)
        #expect(try journal.counters()[.reportsDeadLettered] == 1)
        #expect(try journal.deadLetters().map(\.reportSeq) == [rows[1].seq!])
        // Sequence numbers never repeat, so a receiver can drop duplicates.
        try journal.enqueue(report: Data("{}".utf8), hash: "x", at: Date(), maxRows: 3)
        #expect(try journal.outbox(limit: 10).last!.seq! > rows[2].seq!)
    }

    @Test func reportsOnlyWhatChangedAndTheHeartbeat() throws {
        let journal = try Journal(writer: DatabaseQueue())
        var configuration = TelemetryConfiguration()
        configuration.reportURL = "http://127.0.0.1:1/v1/logs"
        let reporter = StatusReporter(
            identity: .init(hostID: String(repeating: "a", count: 32), fleet: nil, stream: nil, agentVersion: "test"),
            engineOptions: Engine.Options(sysroot: "/nonexistent"), configuration: configuration, policyURL: nil, written: {})
        journal.observe(reporter)
        var driver = DriverRecord(state: .idle, reason: "start", since: Date(timeIntervalSince1970: 1))
        try journal.saveDriver(driver)
        try journal.saveDriver(driver)  // no change: no report
        #expect(try journal.outboxStats().count == 1)
        driver.state = .checking
        driver.reason = "fetching"
        try journal.saveDriver(driver)
        #expect(try journal.outboxStats().count == 2)
        try journal.report(.heartbeat)  // unchanged, but the heartbeat reports anyway
        let rows = try journal.outbox(limit: 10)
        #expect(rows.count == 3)
        let last = try JSONDecoder().decode(JSONValue.self, from: rows[2].body)
        guard case .object(let body) = last, case .object(let update)? = body["update"] else {
            Issue.record("no update section")
            return
        }
        #expect(update["state"] == .string("checking"))
        #expect(body["hostId"] == .string(String(repeating: "a", count: 32)))
        // Off switch: nothing more is written.
        configuration.report = false
        journal.observe(
            StatusReporter(
                identity: .init(hostID: "b", fleet: nil, stream: nil, agentVersion: "test"), engineOptions: Engine.Options(sysroot: "/nonexistent"),
                configuration: configuration, policyURL: nil, written: {}))
        driver.state = .idle
        try journal.saveDriver(driver)
        #expect(try journal.outboxStats().count == 3)
    }

    @Test func settingsPreferTheAgentAndEitherOffSwitchWins() throws {
        var configuration = TelemetryConfiguration()
        let policy = FleetPolicy.Telemetry(countme: true, report: "https://c/v1/logs", heartbeat: PolicyDuration(seconds: 60))
        var s = TelemetrySettings(configuration: configuration, policyURL: "https://p/policy.yaml", policy: policy)
        #expect(s.reportURL == "https://c/v1/logs")
        #expect(s.heartbeat == 60)
        #expect(s.countmeEndpoints == ["https://p/policy.yaml"])
        s = TelemetrySettings(configuration: configuration, policyURL: "https://p/policy.yaml", policy: nil)
        #expect(s.reportURL == nil)
        #expect(s.heartbeat == TelemetrySettings.defaultHeartbeat)
        configuration.countme = false
        configuration.reportURL = "https://mine/v1/logs"
        s = TelemetrySettings(configuration: configuration, policyURL: "https://p/policy.yaml", policy: policy)
        #expect(s.countmeEndpoints.isEmpty)
        #expect(s.reportURL == "https://mine/v1/logs")
        configuration.countme = true
        configuration.report = false
        s = TelemetrySettings(
            configuration: configuration, policyURL: "https://p/policy.yaml",
            policy: FleetPolicy.Telemetry(countme: false, report: "https://c/v1/logs", heartbeat: nil))
        #expect(s.countmeEndpoints.isEmpty)
        #expect(s.reportURL == nil)
    }
}
