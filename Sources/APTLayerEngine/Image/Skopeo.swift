import APTLayerModel
import Foundation

/// skopeo, which speaks every container transport (registries with registries.conf, auth.json
/// and certs.d; OCI layouts; OCI archives): apt-layer reads manifests and copies images with it
/// and never talks to a registry itself.
struct Skopeo {
    var token: CancellationToken?
    /// A directory for skopeo's output files.
    var work: String
    /// Enforce containers-policy.json (signed images); otherwise `--insecure-policy`, as the
    /// commit checksum the image carries is what apt-layer checks.
    var enforcePolicy = false

    /// The policy the signature check reads (``Engine/checkSignaturePolicy(for:path:)``); named
    /// explicitly, so skopeo enforces the same file whatever its per-user lookup would find.
    static let policyPath = "/etc/containers/policy.json"

    /// Global options: the policy, and temporary files (blobs in transit, unpacked archives) in
    /// `work`, which the caller removes whatever happens.
    private var globalArguments: [String] {
        (enforcePolicy ? ["--policy", Self.policyPath] : ["--insecure-policy"]) + ["--tmpdir", work]
    }

    /// The raw manifest (or index) of `image`, as the source serves it.
    func manifest(_ image: String) throws -> [UInt8] { try output(["inspect", "--raw", "--", image], what: "read the manifest of \(image)") }

    /// The raw configuration blob of `image`.
    func configuration(_ image: String) throws -> [UInt8] {
        try output(["inspect", "--raw", "--config", "--", image], what: "read the configuration of \(image)")
    }

    /// Copies `source` to `destination` keeping digests (no conversion); returns the manifest digest written.
    @discardableResult
    func copy(_ source: String, to destination: String) throws -> String {
        let digestFile = "\(work)/skopeo-digest"
        FileTree.remove(digestFile)
        try run(
            // Signatures are checked on the source by the policy (signed images); an OCI layout
            // cannot store them, and nothing after the copy needs them.
            globalArguments + [
                "copy", "--quiet", "--preserve-digests", "--remove-signatures", "--digestfile", digestFile, "--", source, destination,
            ],
            what: "copy \(source) to \(destination)")
        guard let digest = FileTree.read(digestFile)?.trimmingCharacters(in: .whitespacesAndNewlines), digest.hasPrefix("sha256:") else {
            throw EngineError(.system, "skopeo copied \(source) but wrote no digest")
        }
        FileTree.remove(digestFile)
        return digest
    }

    private func output(_ arguments: [String], what: String) throws -> [UInt8] {
        let file = "\(work)/skopeo-output"
        defer { FileTree.remove(file) }
        // stdout to a file (the engine's runner merges the two streams), errors on stderr.
        try run(["sh", "-c", #"exec skopeo "$@" > "$0""#, file] + globalArguments + arguments, what: what, viaShell: true)
        guard let data = FileManager.default.contents(atPath: file) else { throw EngineError(.system, "\(what): no output") }
        return Array(data)
    }

    private func run(_ arguments: [String], what: String, viaShell: Bool = false) throws {
        let argv = viaShell ? arguments : ["skopeo"] + arguments
        guard Subprocess.resolve("skopeo", path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") != nil else {
            throw EngineError(.refused, "images need skopeo: apt-get install skopeo")
        }
        let result = try Subprocess.run(argv, token: token)
        try token?.check()
        guard result.succeeded else {
            if let death = result.signalDeath("skopeo") { throw EngineError(.system, "\(what): \(death)") }
            throw EngineError(Self.kind(of: result.output), "\(what): \(Self.reason(result.output))")
        }
    }

    /// skopeo's own message: the `msg="…"` of its last fatal line, or its last line.
    static func reason(_ output: String) -> String {
        let lines = output.split(separator: "\n").map(String.init)
        guard let last = lines.last(where: { $0.contains("level=fatal") || $0.contains("level=error") }) ?? lines.last else {
            return "skopeo failed"
        }
        if let start = last.range(of: "msg=\"") {
            var message = String(last[start.upperBound...])
            if message.hasSuffix("\"") { message.removeLast() }
            return message.replacingOccurrences(of: "\\\"", with: "\"")
        }
        return last
    }

    /// Not-found for a missing image or tag, a refusal for a signature policy, else a system failure.
    static func kind(of output: String) -> EngineError.Kind {
        let text = output.lowercased()
        if text.contains("manifest unknown") || text.contains("no such file") || text.contains("not found") { return .notFound }
        if text.contains("signature") || text.contains("policy") { return .refused }
        return .system
    }
}
