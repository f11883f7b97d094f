import Foundation
import TestSupport
import Testing

/// The live agent over real mTLS: roles, transactions, events, bad input.
@Suite("apt-layerd over mTLS", .asRoot, .offPool)
struct AgentAPITests {
    @Test func mutualTLSAndRoles() throws {
        let agent = try AgentBed()
        #expect(try agent.request("GET", "/v1/status", as: nil).status < 0)  // handshake refused: no client certificate
        #expect(try agent.request("GET", "/v1/status", as: "rogue").status < 0)  // another CA
        let status = try agent.request("GET", "/v1/status", as: "reader")
        #expect(status.status == 200)
        #expect(status.json["schema"] as? String == "apt-layer.status/v2")
        #expect((status.json["deployments"] as? [Any])?.count == 1)
        let forbidden = try agent.request("POST", "/v1/transactions", as: "reader", body: #"{"operation":"rollback"}"#)
        #expect(forbidden.status == 403)
        #expect(forbidden.headers.lowercased().contains("content-type: application/problem+json"))
        #expect(forbidden.json["type"] as? String == "urn:apt-layer:problem:forbidden")
        #expect(try agent.request("GET", "/v1/status", as: "stranger").status == 403)
        let accepted = try agent.request(
            "POST", "/v1/transactions", as: "operator", body: #"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#)
        #expect(accepted.status == 202)
        let id = try #require(accepted.json["id"] as? String)
        #expect(accepted.headers.lowercased().contains("location: /v1/transactions/\(id)"), "\(accepted.headers)")
        let done = try agent.waitForTransaction(id)
        #expect(done["state"] as? String == "succeeded")
        #expect(done["requester"] as? String == "operator")
        #expect(try agent.bed.packageNames().contains("fixture-app"))
        // TLS 1.1 is refused by the server even when the client offers it.
        let (code, output) = try Shell.status(
            "echo | openssl s_client -connect 127.0.0.1:\(agent.port) -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' -cert \(agent.pki)/operator.crt -key \(agent.pki)/operator.key 2>&1"
        )
        #expect(code != 0)
        #expect(output.contains("alert protocol version"))
        // Metrics need no client certificate, on the loopback listener.
        let metrics = try Shell.run("curl -sf http://127.0.0.1:\(agent.metricsPort)/metrics")
        #expect(metrics.contains("apt_layer_transactions_total{operation=\"install\",state=\"succeeded\"} 1"))
    }

    @Test func localSocketUsesPeerCredentials() throws {
        let agent = try AgentBed()
        let mode = try FileManager.default.attributesOfItem(atPath: agent.socket)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let status = try Shell.run("curl -sf --unix-socket \(agent.socket) http://localhost/v1/status")
        #expect(status.contains("apt-layer.status"))
        let posted = try Shell.run(
            "curl -sf --unix-socket \(agent.socket) -H 'content-type: application/json' -d '{\"operation\":\"kargs\",\"arguments\":{\"append\":[\"x=1\"]}}' http://localhost/v1/transactions"
        )
        let id = try #require((try JSONSerialization.jsonObject(with: Data(posted.utf8)) as? [String: Any])?["id"] as? String)
        let done = try agent.waitForTransaction(id)
        #expect(done["requester"] as? String == "uid:0")
        #expect(done["state"] as? String == "succeeded")
        // Another user cannot even connect (0600, root).
        let (code, _) = try Shell.status(
            "setpriv --reuid=65534 --regid=65534 --clear-groups curl -sf --unix-socket \(agent.socket) http://localhost/v1/status")
        #expect(code != 0)
    }

    @Test func busyJoinQueueAndIdempotency() throws {
        let agent = try AgentBed(extraConfig: "queue-length: 1")
        let slow = #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#
        let first = try agent.request("POST", "/v1/transactions", body: slow)
        #expect(first.status == 202)
        let id = try #require(first.json["id"] as? String)
        let conflict = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#)
        #expect(conflict.status == 409)
        #expect(conflict.json["transaction"] as? String == id)
        let joined = try agent.request("POST", "/v1/transactions", body: slow)
        #expect(joined.status == 200)
        #expect(joined.json["id"] as? String == id)
        let queued = try agent.request(
            "POST", "/v1/transactions?wait=true", body: #"{"operation":"install","arguments":{"packages":["fixture-conf"]},"idempotencyKey":"k-1"}"#)
        #expect(queued.status == 202)
        #expect(queued.json["state"] as? String == "queued")
        let full = try agent.request("POST", "/v1/transactions?wait=true", body: #"{"operation":"rollback"}"#)
        #expect(full.status == 429)
        let replay = try agent.request(
            "POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-conf"]},"idempotencyKey":"k-1"}"#)
        #expect(replay.status == 200)
        #expect(replay.json["id"] as? String == queued.json["id"] as? String)
        // The same key with another request is refused; another requester's key is its own.
        let reused = try agent.request("POST", "/v1/transactions", body: #"{"operation":"rollback","idempotencyKey":"k-1"}"#)
        #expect(reused.status == 422)
        #expect(reused.json["type"] as? String == "urn:apt-layer:problem:idempotency-key-reused")
        let other = try agent.request(
            "POST", "/v1/transactions?wait=true", as: "admin",
            body: #"{"operation":"install","arguments":{"packages":["fixture-conf"]},"idempotencyKey":"k-1"}"#)
        #expect(other.status == 429)  // not a replay of the operator's: a new request, and the queue is full
        for key in ["", String(repeating: "k", count: 201)] {
            let bad = try agent.request("POST", "/v1/transactions", body: #"{"operation":"rollback","idempotencyKey":"\#(key)"}"#)
            #expect(bad.status == 400)
        }
        // Reads are answered while the transaction runs.
        let started = Date()
        #expect(try agent.request("GET", "/v1/status", as: "reader").status == 200)
        #expect(try agent.request("GET", "/v1/transactions", as: "reader").status == 200)
        #expect(Date().timeIntervalSince(started) < 5)
        // A reader cannot cancel; the operator cancels its own; the queued one then runs.
        #expect(try agent.request("DELETE", "/v1/transactions/\(id)", as: "reader").status == 403)
        #expect(try agent.request("DELETE", "/v1/transactions/\(id)").status == 202)
        #expect(try agent.waitForTransaction(id)["state"] as? String == "cancelled")
        let next = try agent.waitForTransaction(try #require(queued.json["id"] as? String))
        #expect(next["state"] as? String == "succeeded")
        #expect(try agent.bed.packageNames().contains("fixture-conf"))
        #expect(try !agent.bed.packageNames().contains("fixture-slow"))
        #expect(agent.bed.leftovers.isEmpty)
    }

    @Test func queuedRequestsRunInOrder() throws {
        let agent = try AgentBed()
        let a = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-lib"]}}"#)
        let b = try agent.request("POST", "/v1/transactions?wait=true", body: #"{"operation":"kargs","arguments":{"append":["b=1"]}}"#)
        let c = try agent.request("POST", "/v1/transactions?wait=true", body: #"{"operation":"kargs","arguments":{"append":["c=1"]}}"#)
        let codes: [Int] = [a.status, b.status, c.status]
        #expect(codes == [202, 202, 202])
        let ids = [a, b, c].compactMap { $0.json["id"] as? String }
        let finished = try ids.map { try agent.waitForTransaction($0) }
        #expect(finished.allSatisfy { $0["state"] as? String == "succeeded" })
        let starts = finished.compactMap { $0["startedAt"] as? String }
        #expect(starts == starts.sorted())
        #expect(try agent.bed.status.deployments[0].kernelArguments.hasSuffix("b=1 c=1"))
        let page1 = try agent.request("GET", "/v1/transactions?limit=2", as: "reader")
        let firstPage: [String] = (page1.json["transactions"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        #expect(firstPage == [ids[2], ids[1]])
        let cursor = try #require(page1.json["nextCursor"] as? String)
        let page2 = try agent.request("GET", "/v1/transactions?limit=2&cursor=\(cursor)", as: "reader")
        let secondPage: [String] = (page2.json["transactions"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        #expect(secondPage == [ids[0]])
        let filtered = try agent.request("GET", "/v1/transactions?operation=kargs&state=succeeded", as: "reader")
        #expect((filtered.json["transactions"] as? [Any])?.count == 2)

        // The status the API serves follows the sysroot, also after changes made outside the agent.
        func defaultKargs() throws -> String {
            let deployments = try agent.request("GET", "/v1/deployments", as: "reader").json["deployments"] as? [[String: Any]]
            return deployments?.first?["kernelArguments"] as? String ?? ""
        }
        #expect(try defaultKargs().hasSuffix("c=1"))
        try Shell.run("\(Paths.cli) rollback -q --local --sysroot \(agent.bed.sysroot)", environment: TestBed.environment)
        #expect(try !defaultKargs().hasSuffix("c=1"))
        #expect(try defaultKargs().hasSuffix("b=1"))
    }

    @Test func eventsReplayAndCancelMidDpkg() async throws {
        let agent = try AgentBed()
        let before = try agent.bed.status
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let id = try #require(posted.json["id"] as? String)
        try await agent.bed.waitForConfigure()
        #expect(try agent.request("DELETE", "/v1/transactions/\(id)", as: "admin").status == 202)
        let done = try agent.waitForTransaction(id, seconds: 20)
        #expect(done["state"] as? String == "cancelled")
        #expect((done["error"] as? String)?.contains("cancelled by admin") == true)
        #expect(try agent.bed.status == before)
        #expect(agent.bed.leftovers.isEmpty)
        try Shell.run("ostree fsck --repo=\(agent.bed.sysroot)/ostree/repo -q")

        let ok = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-app"]}}"#)
        let okID = try #require(ok.json["id"] as? String)
        // A subscriber that arrives while it runs, and a late one after it finished, see the same stream.
        let live = try agent.request("GET", "/v1/transactions/\(okID)/events", as: "reader", extra: "-N --max-time 60")
        let late = try agent.request("GET", "/v1/transactions/\(okID)/events", as: "reader", extra: "--max-time 10")
        #expect(live.status == 200 && late.status == 200)
        #expect(live.body == late.body)
        let kinds = late.body.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        #expect(kinds.first == "task-begin")
        #expect(kinds.last == "finished")
        #expect(kinds.contains("percent") && kinds.contains("task-end"))
        let numbers = late.body.split(separator: "\n").filter { $0.hasPrefix("id: ") }.compactMap { Int($0.dropFirst(4)) }
        #expect(numbers == Array(1...numbers.count))
        #expect(late.body.contains(#""success":true"#))
    }

    @Test func timeoutCancelsWithAReason() throws {
        let agent = try AgentBed(extraConfig: "transaction-timeout-seconds: 3")
        let posted = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["fixture-slow"]}}"#)
        let done = try agent.waitForTransaction(try #require(posted.json["id"] as? String), seconds: 30)
        #expect(done["state"] as? String == "cancelled")
        #expect((done["error"] as? String)?.contains("timed out") == true)
        #expect(agent.bed.leftovers.isEmpty)
    }
}
