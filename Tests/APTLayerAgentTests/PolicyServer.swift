import Foundation
import TestSupport

/// nginx serving a directory over HTTPS that requires a client certificate from the test CA (the
/// policy server), and over plain HTTP on a second port (the OSTree repository: the commit
/// checksum is its trust). Its access log is kept for countme.
final class PolicyServer: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the process is stopped in deinit.
    let root: String
    let www: String
    let httpsPort: Int
    let httpPort: Int
    var accessLog: String { "\(root)/access.log" }
    var base: String { "https://127.0.0.1:\(httpsPort)" }
    var plainBase: String { "http://127.0.0.1:\(httpPort)" }
    private let process = Process()

    init(directory: String, pki: String) throws {
        root = directory
        www = "\(directory)/www"
        httpsPort = try AgentBed.freePort()
        httpPort = try AgentBed.freePort()
        try Shell.run("mkdir -p \(www) \(root)/tmp")
        try """
        daemon off;
        user root;
        worker_processes 1;
        pid \(root)/nginx.pid;
        error_log \(root)/error.log;
        events { worker_connections 256; }
        http {
          access_log \(root)/access.log;
          client_body_temp_path \(root)/tmp; proxy_temp_path \(root)/tmp; fastcgi_temp_path \(root)/tmp;
          uwsgi_temp_path \(root)/tmp; scgi_temp_path \(root)/tmp;
          types { text/plain yaml sig; }
          default_type application/octet-stream;
          server {
            listen 127.0.0.1:\(httpsPort) ssl;
            ssl_certificate \(pki)/server.crt;
            ssl_certificate_key \(pki)/server.key;
            ssl_client_certificate \(pki)/ca.crt;
            ssl_verify_client on;
            root \(www);
          }
          server {
            listen 127.0.0.1:\(httpPort);
            root \(www);
          }
        }
        """.write(toFile: "\(root)/nginx.conf", atomically: true, encoding: .utf8)
        // In the foreground as a child of the test (a daemonised nginx keeps the test's output
        // pipe open, and reading it never ends).
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-c", "\(root)/nginx.conf", "-p", root, "-e", "\(root)/error.log"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 where try Shell.status("curl -s -o /dev/null http://127.0.0.1:\(httpPort)/").0 != 0 {
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Writes a file under the served directory (atomically, so nginx never serves half of it).
    func put(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(www)/\(name)", atomically: true, encoding: .utf8)
        try freshen(name)
    }

    /// nginx's entity tag is the file's mtime (seconds) and size: two versions written within one
    /// second with the same size would look unchanged. Each write gets its own mtime.
    func freshen(_ name: String) throws {
        try Shell.run(
            "n=$(cat \(root)/mtime 2>/dev/null || echo 0); n=$((n+1)); echo $n > \(root)/mtime; touch -m -d @$((1700000000+n)) \(www)/\(name)")
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }
}

/// Ed25519 keys made by `ssh-keygen`, an allowed_signers file trusting `alice` and `bob`, and
/// signing as `ssh-keygen -Y sign -n apt-layer-policy` does.
struct PolicyKeys {
    let dir: String

    init(directory: String) throws {
        dir = directory
        try Shell.run("mkdir -p \(dir)")
        var lines = ""
        for name in ["alice", "bob", "mallory"] {
            try Shell.run("ssh-keygen -q -t ed25519 -N '' -C \(name) -f \(dir)/\(name)")
            let pub = try String(contentsOfFile: "\(dir)/\(name).pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
            if name != "mallory" { lines += "\(name)@acme \(pub)\n" }
        }
        try lines.write(toFile: signers, atomically: true, encoding: .utf8)
    }

    var signers: String { "\(dir)/allowed_signers" }

    /// Writes `text` as `name` in `server` with its signature by `signer` as `name.sig`.
    func publish(_ text: String, as name: String = "policy.yaml", on server: PolicyServer, signer: String = "alice") throws {
        let staging = "\(dir)/\(name)"
        try text.write(toFile: staging, atomically: true, encoding: .utf8)
        try Shell.run("rm -f \(staging).sig && ssh-keygen -q -Y sign -f \(dir)/\(signer) -n apt-layer-policy \(staging)")
        try Shell.run("cp \(staging).sig \(server.www)/\(name).sig.new && mv \(server.www)/\(name).sig.new \(server.www)/\(name).sig")
        try Shell.run("cp \(staging) \(server.www)/\(name).new && mv \(server.www)/\(name).new \(server.www)/\(name)")
        try server.freshen(name)
    }

    /// A policy in the shape of docs/fleet.md.
    static func policy(
        version: Int, fleet: String = "acme-prod", expires: String = "2099-01-01T00:00:00Z", remote: String = "http://127.0.0.1:1/repo",
        ref: String = "acme/stable", release: String = "2026.12.1", commit: String, published: String = "2026-01-01T00:00:00Z", extra: String = ""
    ) -> String {
        """
        apiVersion: apt-layer/v1
        kind: FleetPolicy
        fleet: \(fleet)
        version: \(version)
        expires: \(expires)
        remote: {name: acme, url: "\(remote)"}
        streams:
          stable:
            ref: \(ref)
            salt: stream
            release:
              id: "\(release)"
              commit: \(commit)
              published: \(published)
              open-through-wave: 1
              waves:
                - {name: canary, until: 5000, start-after: 0s}
                - {name: broad, until: 10000, start-after: 0s}
        \(extra)
        """
    }
}
