import APTLayerModel
import Foundation

extension Engine {
    /// `bundle create`: writes one file for an offline site: an OCI archive holding `images`
    /// (`docker://REGISTRY/NAME@sha256:HEX`, each copied by skopeo with its digest kept and named
    /// by the digest's hex), with `files` (the signed policy and its signature, at their paths in
    /// the bundle) beside the layout. Deterministic tar (sorted, numeric owners, mtime 0); written
    /// beside `output` and renamed into place, so a half-written bundle is never seen.
    public func writeBundle(images: [String], files: [(path: String, bytes: [UInt8])], output: String, token: CancellationToken = .init()) throws {
        let directory = (output as NSString).deletingLastPathComponent.isEmpty ? "." : (output as NSString).deletingLastPathComponent
        let work: String
        do { work = try FileTree.temporaryDirectory(in: directory, prefix: ".apt-layer-bundle.") } catch {
            throw EngineError.wrap(error, "create a work directory beside \(output)")
        }
        defer { FileTree.remove(work) }
        let layout = "\(work)/layout"
        let skopeo = Skopeo(token: token, work: work)
        for image in images {
            guard image.hasPrefix("docker://"), let at = image.range(of: "@sha256:") else {
                throw EngineError(.invalidArgument, "a bundle carries images pinned by digest (docker://REGISTRY/NAME@sha256:HEX), not \(image)")
            }
            let digest = "sha256:\(image[at.upperBound...])"
            progress.phase("Copying \(image)")
            let written = try skopeo.copy(image, to: "oci:\(layout):\(digest.dropFirst("sha256:".count))")
            guard written == digest else { throw EngineError(.invalidArgument, "\(image) is \(written), not the digest it pins") }
        }
        try OCILayout(path: layout).create()
        for file in files {
            let path = "\(layout)/\(file.path)"
            try FileTree.makeDirectory((path as NSString).deletingLastPathComponent)
            try FileTree.replaceDurably(path, file.bytes)
        }
        progress.phase("Writing \(output)")
        let partial = "\(work)/bundle"
        try Subprocess.check(
            [
                "tar", "--create", "--file", partial, "--directory", layout, "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
                "--numeric-owner", "--format=posix", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", ".",
            ], token: token)
        guard rename(partial, output) == 0 else { throw FileTree.posixError("move the bundle to \(output)") }
    }
}
