import APTLayerJournal
import Foundation
import GRDB
import TestSupport
import Testing

@testable import APTLayerAgent

/// Crash recovery, the state directory lock, configuration, and the journal's migrations.
@Suite("apt-layerd lifecycle and journal", .asRoot, .offPool)
struct AgentLifecycleTests {
    /// `after-install` dies with a half-built tree in the repository; `before-deploy` with the
    /// layered commit written but not deployed; `after-deploy` with the deployment written but the
    /// journal still saying `running` (the restart must call it `succeeded`, not `interrupted`).
    @Test(arguments: ["after-install", "before-deploy", "after-deploy"])
    func killedDuringATransactionRecovers(_ fault: String) throws {
        let agent = try AgentBed(environment: ["APT_LAYER_TEST_FAULT": fault])
        let before = try agent.bed.status
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        #expect(agent.waitForExit(seconds: 60) != nil)  // killed at the fault point with SIGKILL
        let deployed = fault == "after-deploy"
        #expect(try (agent.bed.status == before) != deployed)
        #expect(fault != "after-install" || !agent.bed.leftovers.isEmpty)
        try agent.start()
        let record = try agent.request("GET", "/v1/transactions/\(id)", as: "reader").json
        #expect(record["state"] as? String == (deployed ? "succeeded" : "interrupted"))
        if deployed { #expect(record["resultChecksum"] as? String == (try agent.bed.defaultChecksum)) }
        #expect(try (agent.bed.status == before) != deployed)
        // Its event stream ends, whatever happened.
        let events = try agent.request("GET", "/v1/transactions/\(id)/events", as: "reader", extra: "--max-time 10")
        #expect(events.body.contains("event: finished"), "\(events.body)")
        #expect(events.body.contains(#""state":"\#(deployed ? "succeeded" : "interrupted")""#))
        #expect(agent.bed.leftovers.isEmpty)
        try Shell.run("ostree fsck --repo=\(agent.bed.sysroot)/ostree/repo -q")
        let again = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-conf"]}}"#)
        #expect(try agent.waitForTransaction(try #require(again.json["id"] as? String))["state"] as? String == "succeeded")
    }

    @Test func secondAgentOnTheSameStateDirectoryRefuses() throws {
        let agent = try AgentBed()
        let (code, output) = try Shell.status(
            "\(Paths.agent) --config \(agent.configPath) --listen 127.0.0.1:\(agent.port + 1) --metrics-listen 127.0.0.1:\(agent.metricsPort + 1)",
            environment: TestBed.environment)
        #expect(code == 1)
        #expect(output.contains("another apt-layerd"))
        let mode = try FileManager.default.attributesOfItem(atPath: agent.state)[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }

    @Test func configurationMergesDropInsInNameOrderAndFlagsWin() throws {
        let dir = try Shell.run("mktemp -d").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Shell.run("mkdir -p \(dir)/usr.d \(dir)/etc.d")
        try "listen: \"127.0.0.1:1000\"\nroles: { a: reader }\nretention: { max-count: 5 }\n".write(
            toFile: "\(dir)/main.yaml", atomically: true, encoding: .utf8)
        try "listen: \"127.0.0.1:2000\"\nqueue-length: 3\n".write(toFile: "\(dir)/usr.d/10-vendor.yaml", atomically: true, encoding: .utf8)
        try "queue-length: 4\n".write(toFile: "\(dir)/usr.d/20-x.yaml", atomically: true, encoding: .utf8)
        try "queue-length: 5\nroles: { b: admin }\nretention: { max-age-days: 7 }\n".write(
            toFile: "\(dir)/etc.d/20-x.yaml", atomically: true, encoding: .utf8)
        let files = AgentConfiguration.files(main: "\(dir)/main.yaml", dropInDirectories: ["\(dir)/usr.d", "\(dir)/etc.d"])
        #expect(files == ["\(dir)/main.yaml", "\(dir)/usr.d/10-vendor.yaml", "\(dir)/etc.d/20-x.yaml"])
        let config = try AgentConfiguration.load(files: files)
        #expect(config.listen == "127.0.0.1:2000")
        #expect(config.queueLength == 5)
        #expect(config.roles == ["a": .reader, "b": .admin])
        #expect(config.retention.maxCount == 5 && config.retention.maxAgeDays == 7)

        try "listen: nonsense\n".write(toFile: "\(dir)/bad.yaml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try AgentConfiguration.load(files: ["\(dir)/bad.yaml"]) }
        try "roles: { x: superuser }\n".write(toFile: "\(dir)/bad2.yaml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try AgentConfiguration.load(files: ["\(dir)/bad2.yaml"]) }
        // An empty socket path disables the socket (it used to come back as the default).
        try "socket: \"\"\ntrim-memory: false\nmax-upload-bytes: 4096\n".write(toFile: "\(dir)/nosock.yaml", atomically: true, encoding: .utf8)
        let noSocket = try AgentConfiguration.load(files: ["\(dir)/nosock.yaml"])
        #expect(noSocket.socket == "")
        #expect(noSocket.trimMemory == false)
        #expect(noSocket.maxUploadBytes == 4096)

        let (code, output) = try Shell.status(
            "\(Paths.agent) --config \(dir)/main.yaml --drop-in \(dir)/usr.d --drop-in \(dir)/etc.d --queue-length 9 --check-config --tls-cert /nonexistent"
        )
        #expect(code == 1 && output.contains("TLS files"))
        let pki = "\(dir)/pki"
        try Shell.run("\(Paths.packageRoot)/scripts/make-test-pki.sh \(pki)")
        let checked = try Shell.run(
            "\(Paths.agent) --config \(dir)/main.yaml --drop-in \(dir)/usr.d --drop-in \(dir)/etc.d --queue-length 9 --check-config --tls-cert \(pki)/server.crt --tls-key \(pki)/server.key --client-ca \(pki)/ca.crt"
        )
        #expect(checked.contains("queue-length: 9"))
        #expect(checked.contains("127.0.0.1:2000"))
    }
}
