import Foundation
import TestSupport
import Testing

/// Static deltas for the HTTP OSTree remote (issue 23, part 4): a release published with
/// `ostree static-delta generate --from PREV --to NEW` and `ostree summary -u` (docs/fleet.md's
/// publish flow) reaches a host's `upgrade` as delta parts, with no file object fetched; without
/// the delta the same upgrade fetches objects. The server counts what it sent
/// (bench/support/counting_http.py, also bench/transport.sh's).
@Suite("static deltas over HTTP", .asRoot, .offPool)
struct StaticDeltaTests {
    @Test func anUpgradeTakesThePublishedDeltaInsteadOfObjects() throws {
        let bed = try TestBed()
        let n = bed.baseChecksum
        let n1 = try bed.composeBase(version: "2.0", note: "2")
        let www = "\(bed.fixtures)/www"
        let repo = "\(bed.sysroot)/ostree/repo"
        try Shell.run(
            "mkdir -p \(www) && ostree init --repo=\(www)/repo --mode=archive && ostree pull-local --repo=\(www)/repo \(repo) \(n) \(n1) >/dev/null"
                + " && ostree refs --repo=\(www)/repo --create=test/base \(n1) && ostree summary -u --repo=\(www)/repo")
        let port = try Shell.run(#"python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'"#)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let log = "\(bed.fixtures)/http.log"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["\(Paths.packageRoot)/bench/support/counting_http.py", www, port, log]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // SIGKILL: children of the test process start with SIGTERM blocked (HealthCheckTests).
        defer {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        let url = "http://127.0.0.1:\(port)/repo"
        for _ in 0..<100 where try Shell.status("curl -sf -o /dev/null \(url)/config").0 != 0 { usleep(50_000) }

        /// A host deployed on N from the server; returns the server's log of its upgrade to N+1.
        func upgrade(_ name: String) throws -> [Substring] {
            let host = "\(bed.fixtures)/\(name)"
            try Shell.run("\(Paths.cli) init -q --sysroot \(host) --os debian")
            try Shell.run("\(Paths.cli) rebase -q --sysroot \(host) --remote-url \(url) srv:test/base \(n)")
            try Shell.run(": > \(log)")
            try Shell.run("\(Paths.cli) upgrade -q --sysroot \(host)")
            let deployed = try Shell.run("\(Paths.cli) status --json --sysroot \(host)")
            #expect(deployed.contains(n1), "\(name) upgraded to N+1")
            return try Shell.run("cat \(log)").split(separator: "\n")
        }
        let byObjects = try upgrade("host-a")
        #expect(byObjects.contains { $0.contains("/objects/") && $0.contains(".filez") }, "\(byObjects)")
        #expect(!byObjects.contains { $0.contains("/deltas/") }, "\(byObjects)")

        try Shell.run("ostree static-delta generate --repo=\(www)/repo --from=\(n) --to=\(n1) >/dev/null && ostree summary -u --repo=\(www)/repo")
        let byDelta = try upgrade("host-b")
        #expect(byDelta.contains { $0.contains("/deltas/") && $0.split(separator: " ").dropFirst().first == "200" }, "\(byDelta)")
        #expect(!byDelta.contains { $0.contains("/objects/") && $0.contains(".filez") }, "no file object fetched: \(byDelta)")
    }
}
