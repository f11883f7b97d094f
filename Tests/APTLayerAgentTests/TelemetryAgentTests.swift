import APTLayerFleet
import Foundation
import TestSupport
import Testing

/// Status reports and countme from the real agent: reports through the durable outbox to a
/// receiver that parses OTLP with the official protobuf definitions, across a collector outage, a
/// restart, a kill -9, 503 with Retry-After and a 400; countme requests in a real nginx access log,
/// counted by deploy/countme.
@Suite("Telemetry through the agent", .serialized, .asRoot, .offPool)
struct TelemetryAgentTests {
    static func seqs(_ records: [[String: Any]]) -> Set<Int> {
        Set(records.compactMap { ($0["attributes"] as? [String: Any])?["apt_layer.report.seq"] as? Int })
    }

    @Test func reportsSurviveAnOutageARestartAndAKillAndArriveParsed() throws {
        let bed = try TestBed()
        let pki = "\(bed.fixtures)/pki"
        try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        let receiver = try OTLPReceiver(directory: "\(bed.fixtures)/otlp", mode: "down")
        let server = try PolicyServer(directory: "\(bed.fixtures)/policy-server", pki: pki)
        let keys = try PolicyKeys(directory: "\(bed.fixtures)/keys")
        try keys.publish(
            PolicyKeys.policy(version: 1, commit: bed.baseChecksum, extra: "telemetry: {countme: false, report: \"\(receiver.url)\", heartbeat: 1h}"),
            on: server)
        let agent = try FleetPolicyTests.agent(
            server: server, keys: keys, bed: bed, extra: "telemetry: {batch-size: 4, max-backoff: 1s}")
        let hostID = try HostIdentity.hostID(machineID: FleetPolicyTests.machineID)

        // The collector is down: reports wait in the outbox (the policy accepted, the driver's move
        // to up-to-date; before the policy named the collector there was nowhere to report to).
        try agent.eventually("reports in the outbox") { try agent.metric("apt_layer_telemetry_outbox_reports") >= 2 }
        let txn = try agent.request("POST", "/v1/transactions?wait=true", body: #"{"operation":"kargs","arguments":{"append":["t=1"]}}"#)
        #expect(txn.status == 202, "\(txn.body)")
        _ = try agent.waitForTransaction(txn.json["id"] as? String ?? "")
        try agent.eventually("the transaction's reports") { try agent.metric("apt_layer_telemetry_outbox_reports") >= 4 }
        #expect(try agent.metric("apt_layer_telemetry_outbox_oldest_age_seconds") > 0)

        // kill -9 and a restart lose nothing; the restart adds its own report.
        let before = try agent.metric("apt_layer_telemetry_outbox_reports")
        agent.stop(kill: true)
        try agent.start()
        #expect(try agent.metric("apt_layer_telemetry_outbox_reports") >= before)

        // 503 with Retry-After: the agent waits and tries again; nothing is accepted or lost.
        try receiver.mode("503", retryAfter: "1")
        try agent.eventually("a 503 answered") { ((try receiver.state()["by_status"] as? [String: Any])?["503"] as? Int ?? 0) >= 2 }
        #expect(receiver.records().isEmpty)
        try receiver.mode("up")
        try agent.eventually("the outbox drained", seconds: 30) { try agent.metric("apt_layer_telemetry_outbox_reports") == 0 }

        let records = receiver.records()
        let seqs = Self.seqs(records)
        // Every report arrived: sequence numbers 1…max without a gap (at least once; duplicates allowed).
        #expect(!seqs.isEmpty && seqs == Set(1...(seqs.max() ?? 0)), "\(seqs.sorted())")
        #expect(try receiver.state()["protocol_errors"] as? Int == 0)
        #expect(try agent.metric("apt_layer_telemetry_reports_sent_total") == Double(seqs.count))
        let last = try #require(records.last)
        let resource = try #require(last["resource"] as? [String: Any])
        #expect(resource["service.name"] as? String == "apt-layerd")
        #expect(resource["host.id"] as? String == hostID)
        let body = try #require(last["body"] as? [String: Any])
        #expect(body["schema"] as? String == "apt-layer.report/v1")
        #expect(body["hostId"] as? String == hostID)
        #expect((body["update"] as? [String: Any])?["state"] as? String == "up-to-date")
        #expect((body["policy"] as? [String: Any])?["version"] as? Int == 1)
        #expect((body["health"] as? [String: Any])?["result"] as? String == "none")
        let deployments = try #require(body["deployments"] as? [[String: Any]])
        #expect(deployments.first?["role"] as? String == "default")
        #expect(deployments.first?["release"] as? String == "2026.12.1")
        let transactions = records.compactMap { (($0["body"] as? [String: Any])?["transactions"] as? [String: Any])?["last"] as? [String: Any] }
        #expect(transactions.contains { $0["operation"] as? String == "kargs" && $0["state"] as? String == "succeeded" })
        #expect(!records.contains { (($0["attributes"] as? [String: Any])?["event.name"] as? String) != "apt_layer.status" })

        // A 400 is final: the report is dead-lettered, not retried forever.
        try receiver.mode("400")
        _ = try FleetPolicyTests.refresh(agent)
        try agent.eventually("a dead letter") { try agent.metric("apt_layer_telemetry_reports_dead_lettered_total") >= 1 }
        try agent.eventually("the outbox drained by dead letters") { try agent.metric("apt_layer_telemetry_outbox_reports") == 0 }
    }

    @Test func theOutboxIsBoundedAndCountsWhatItDrops() throws {
        let bed = try TestBed()
        let receiver = try OTLPReceiver(directory: "\(bed.fixtures)/otlp", mode: "down")
        try "\(FleetPolicyTests.machineID)\n".write(toFile: "\(bed.fixtures)/machine-id", atomically: true, encoding: .utf8)
        // No fleet: reports go where the configuration says; the heartbeat is every second.
        let agent = try AgentBed(
            bed: bed,
            extraConfig: """
                telemetry: {report-url: "\(receiver.url)", heartbeat: 1s, max-outbox-reports: 3, max-backoff: 1s,
                  machine-id-file: \(bed.fixtures)/machine-id}
                """)
        try agent.eventually("dropped reports", seconds: 60) { try agent.metric("apt_layer_telemetry_reports_dropped_total") >= 2 }
        #expect(try agent.metric("apt_layer_telemetry_outbox_reports") <= 3)
        try receiver.mode("up")
        try agent.eventually("the outbox drained") { try agent.metric("apt_layer_telemetry_outbox_reports") == 0 }
        // The dropped reports never arrive: fewer distinct sequence numbers than were written.
        // (A batch already in flight when its rows were dropped may still land.)
        let seqs = Self.seqs(receiver.records())
        #expect(seqs.count < (seqs.max() ?? 0), "\(seqs.sorted())")
    }

    @Test func countmeCountsOncePerWeekWithoutAnyIdentifier() throws {
        let bed = try TestBed()
        let pki = "\(bed.fixtures)/pki"
        try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        let server = try PolicyServer(directory: "\(bed.fixtures)/policy-server", pki: pki)
        let keys = try PolicyKeys(directory: "\(bed.fixtures)/keys")
        try keys.publish(PolicyKeys.policy(version: 1, commit: bed.baseChecksum), on: server)
        // The default endpoint is the policy URL; this server demands client certificates there,
        // which countme never presents, so the plain listener is named as a second endpoint.
        let agent = try FleetPolicyTests.agent(
            server: server, keys: keys, bed: bed,
            extra:
                "telemetry: {countme-delay: 1s, countme-endpoints: [\"\(server.base)/policy.yaml\", \"\(server.plainBase)/policy.yaml?stream=stable\"]}"
        )
        let cookie = "\(agent.state)/countme.json"
        try agent.eventually("the countme cookie") { FileManager.default.fileExists(atPath: cookie) }
        func countmeLines() -> [String] {
            ((try? String(contentsOfFile: server.accessLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                .filter { $0.contains("countme=") }
        }
        try agent.eventually("two countme requests") { countmeLines().count == 2 }
        var lines = countmeLines()
        // The mTLS endpoint refused the certificate-less request (400); the plain one counted it.
        #expect(lines.contains { $0.contains("GET /policy.yaml?countme=1 ") && $0.contains("\" 400 ") })
        #expect(lines.contains { $0.contains("GET /policy.yaml?stream=stable&countme=1 ") && $0.contains("\" 200 ") })
        let deployment = try Shell.run("ls -d \(bed.sysroot)/ostree/deploy/debian/deploy/*.0").trimmingCharacters(in: .whitespacesAndNewlines)
        let osRelease = try String(contentsOfFile: "\(deployment)/usr/lib/os-release", encoding: .utf8)
        func field(_ key: String) -> String {
            osRelease.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map {
                String($0.dropFirst(key.count + 1)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            } ?? ""
        }
        let arch = try Shell.run("uname -m").trimmingCharacters(in: .whitespacesAndNewlines)
        let userAgent = "apt-layer (\(field("NAME")) \(field("VERSION_ID")); \(field("VARIANT_ID")); Linux.\(arch))"
        #expect(lines.allSatisfy { $0.hasSuffix("\"\(userAgent)\"") }, "\(lines)")
        #expect(try agent.metric("apt_layer_countme_last_sent_timestamp_seconds") > 0)

        // Again in the same week: nothing is sent.
        agent.stop()
        try agent.start()
        Thread.sleep(forTimeInterval: 3)
        #expect(countmeLines().count == 2)

        // Counted first five weeks ago, last one week ago: age bucket 3 (weeks 5–24).
        agent.stop()
        let now = Int(Date().timeIntervalSince1970)
        try #"{"epoch":\#(now - 5 * 604_800),"window":\#(now - 604_800)}"#.write(toFile: cookie, atomically: true, encoding: .utf8)
        try agent.start()
        try agent.eventually("the bucket-3 count") { countmeLines().count == 4 }
        lines = countmeLines()
        #expect(lines.contains { $0.contains("stable&countme=3 ") })
        let saved = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cookie))) as? [String: Int]
        #expect(saved?["epoch"] == now - 5 * 604_800)
        #expect((saved?["window"] ?? 0) >= now)

        // The server side: deploy/countme counts the real access log; no address appears.
        let totals = try Shell.run(
            "\(OTLPReceiver.python) \(Paths.packageRoot)/deploy/countme/apt-layer-countme --json \(server.accessLog)")
        #expect(!totals.contains("127.0.0.1"))
        // JSON Lines: one object per (week, os, variant, arch, age bucket).
        let rows = totals.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(rows.reduce(0) { $0 + ($1["hits"] as? Int ?? 0) } == 2, "\(totals)")
        #expect(Set(rows.map { "\($0["sys_age"] ?? "")" }) == ["1", "3"], "\(totals)")
        #expect(rows.allSatisfy { $0["os_name"] as? String == field("NAME") && $0["os_arch"] as? String == arch }, "\(totals)")
    }
}
