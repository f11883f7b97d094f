import Foundation
import TestSupport
import Testing

/// .deb files reach a remote agent by upload, never by host path: streamed under a size limit,
/// checked, kept by SHA-256, installed as `sha256:HEX`; every refusal leaves nothing behind.
@Suite("Package uploads", .asRoot, .offPool)
struct UploadTests {
    static let debType = "-H 'content-type: application/vnd.debian.binary-package'"

    /// Files in the agent's upload store (the sysroot's state directory).
    static func stored(_ agent: AgentBed) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(agent.bed.sysroot)/ostree/apt-layer/uploads")) ?? []).sorted()
    }

    @Test func uploadThenInstallByDigest() throws {
        let agent = try AgentBed()
        let deb = "\(agent.bed.debs)/fixture-local-1.0.deb"
        let digest = try Shell.run("sha256sum \(deb) | cut -d' ' -f1").trimmingCharacters(in: .whitespacesAndNewlines)

        // A reader may not upload.
        #expect(try agent.request("POST", "/v1/package-files", as: "reader", extra: "\(Self.debType) --data-binary @\(deb)").status == 403)
        let uploaded = try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary @\(deb)")
        #expect(uploaded.status == 201, "\(uploaded.body)")
        #expect(uploaded.json["sha256"] as? String == digest)
        #expect(uploaded.json["reference"] as? String == "sha256:\(digest)")
        #expect(uploaded.json["package"] as? String == "fixture-local")
        #expect(uploaded.json["version"] as? String == "1.0")
        #expect(uploaded.headers.lowercased().contains("location: /v1/package-files/\(digest)"))
        // The same bytes again: 200, one stored copy.
        #expect(
            try agent.request("POST", "/v1/package-files", extra: "-H 'content-type: application/octet-stream' --data-binary @\(deb)").status == 200)
        #expect(Self.stored(agent) == ["\(digest).deb", "\(digest).json"])
        let listed = try agent.request("GET", "/v1/package-files", as: "reader")
        #expect((listed.json["files"] as? [[String: Any]])?.compactMap { $0["sha256"] as? String } == [digest])

        let posted = try agent.request(
            "POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["sha256:\#(digest)"]}}"#)
        #expect(posted.status == 202, "\(posted.body)")
        let done = try agent.waitForTransaction(try #require(posted.json["id"] as? String))
        #expect(done["state"] as? String == "succeeded", "\(done)")
        #expect(try agent.bed.packageNames().contains("fixture-local"))

        // Deleting the upload does not touch the deployment's own copy.
        #expect(try agent.request("DELETE", "/v1/package-files/\(digest)").status == 204)
        #expect(try agent.request("GET", "/v1/package-files/\(digest)", as: "reader").status == 404)
        #expect(Self.stored(agent).isEmpty)
        try Shell.run("ostree fsck --repo=\(agent.bed.sysroot)/ostree/repo -q")
        let again = try agent.request(
            "POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["sha256:\#(digest)"]}}"#)
        let failed = try agent.waitForTransaction(try #require(again.json["id"] as? String))
        #expect(failed["state"] as? String == "failed")
        #expect((failed["error"] as? String)?.contains("no uploaded package sha256:\(digest)") == true, "\(failed)")
        #expect(failed["failure"] as? String == "not-found", "\(failed)")
    }

    @Test func badUploadsAreRefusedAndLeaveNothing() throws {
        let agent = try AgentBed(extraConfig: "max-upload-bytes: 4096")
        let before = try agent.bed.status
        // Not a .deb; a truncated .deb; a .deb with a path leaving the root: 422.
        try Shell.run("head -c 2000 /dev/urandom > \(agent.bed.fixtures)/noise.deb")
        for file in ["\(agent.bed.fixtures)/noise.deb", "\(agent.bed.bad)/corrupt.deb", "\(agent.bed.bad)/escape.deb"] {
            let reply = try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary @\(file)")
            #expect(reply.status == 422, "\(file): \(reply.body)")
            #expect(reply.json["type"] as? String == "urn:apt-layer:problem:bad-package", "\(reply.body)")
        }
        // Over the limit, declared (Content-Length) or streamed (chunked): 413.
        try Shell.run("head -c 10000 /dev/urandom > \(agent.bed.fixtures)/big.deb")
        let declared = try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary @\(agent.bed.fixtures)/big.deb")
        #expect(declared.status == 413, "\(declared.body)")
        let chunked = try agent.request(
            "POST", "/v1/package-files", extra: "\(Self.debType) -H 'transfer-encoding: chunked' --data-binary @\(agent.bed.fixtures)/big.deb")
        #expect(chunked.status == 413, "\(chunked.body)")
        // Empty: 400.
        #expect(try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary ''").status == 422)
        // A malformed reference is refused before anything is queued.
        let malformed = try agent.request("POST", "/v1/transactions", body: #"{"operation":"install","arguments":{"packages":["sha256:ABC"]}}"#)
        #expect(malformed.status == 422, "\(malformed.body)")
        #expect(try agent.request("GET", "/v1/package-files/not-a-digest", as: "reader").status == 400)
        #expect(Self.stored(agent).isEmpty, "\(Self.stored(agent))")
        #expect(try agent.bed.status == before)
    }

    @Test func storeLimitAnswers507() throws {
        let bed = try TestBed()
        let deb = "\(bed.debs)/fixture-local-1.0.deb"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: deb)[.size] as? Int)
        // Room for the first upload and its metadata, not for a second package.
        let agent = try AgentBed(bed: bed, extraConfig: "max-upload-store-bytes: \(size + 500)")
        #expect(try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary @\(deb)").status == 201)
        let second = "\(agent.bed.debs)/fixture-app-1.0.deb"
        let full = try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary @\(second)")
        #expect(full.status == 507, "\(full.body)")
        #expect(Self.stored(agent).count == 2)  // the first upload and its metadata, nothing else
    }

    /// A full state filesystem while the body streams in: 507, and the partial file is gone.
    @Test func fullFilesystemAnswers507() throws {
        let agent = try AgentBed(bed: try TestBed(sysrootSize: "64M"))
        try Shell.run("head -c 2M /dev/urandom > \(agent.bed.fixtures)/two-mib.deb")
        // Leave less than the upload needs on the sysroot's tmpfs.
        let free = try Shell.run("df --output=avail -B1 \(agent.bed.sysroot) | tail -1").trimmingCharacters(in: .whitespacesAndNewlines)
        let filler = max((Int(free) ?? 0) - 512 * 1024, 0)
        try Shell.run("head -c \(filler) /dev/zero > \(agent.bed.sysroot)/filler")
        let full = try agent.request("POST", "/v1/package-files", extra: "\(Self.debType) --data-binary @\(agent.bed.fixtures)/two-mib.deb")
        #expect(full.status == 507, "\(full.body)")
        #expect(full.json["type"] as? String == "urn:apt-layer:problem:insufficient-storage")
        #expect(Self.stored(agent).isEmpty, "\(Self.stored(agent))")
        try Shell.run("rm \(agent.bed.sysroot)/filler")
    }

    /// The CLI over mTLS uploads a .deb path and installs it by digest; the agent never reads the
    /// client's path.
    @Test func cliUploadsHostFilesOverMutualTLS() throws {
        let agent = try AgentBed()
        try Shell.run("mkdir -p \(agent.bed.fixtures)/client && cp \(agent.bed.debs)/fixture-local-1.0.deb \(agent.bed.fixtures)/client/")
        let mtls =
            "--agent https://127.0.0.1:\(agent.port) --cert \(agent.pki)/operator.crt --key \(agent.pki)/operator.key --ca \(agent.pki)/ca.crt"
        let (code, output) = try Shell.status("\(Paths.cli) install \(mtls) \(agent.bed.fixtures)/client/fixture-local-1.0.deb 2>&1")
        #expect(code == 0, "\(output)")
        #expect(output.contains("as sha256:"), "\(output)")
        #expect(try agent.bed.packageNames().contains("fixture-local"))
        let history = try agent.request("GET", "/v1/transactions?limit=1", as: "reader")
        let packages = ((history.json["transactions"] as? [[String: Any]])?.first?["arguments"] as? [String: Any])?["packages"] as? [String]
        #expect(packages?.first?.hasPrefix("sha256:") == true, "\(history.body)")
    }
}
