import APTLayerModel
import Foundation
import OSTree

/// Brings an OCI image made by `compose oci` into the repository as the exact commit it carries.
///
/// skopeo reads the manifest (by digest once resolved, so a tag that moves during the pull cannot
/// mix two images) and copies the image into a cache that is itself an OCI layout
/// (`/var/lib/apt-layer/images`): layers already there are not fetched again. Every blob is
/// checked against its digest, the commit object in the first layer against the `ostree.commit`
/// label, and the tree the other layers make against the tree that commit names; only then is the
/// commit object written. Nothing else in the repository or on the host changes before that.
struct ImageImporter {
    /// What a pull found.
    struct Pulled: Equatable {
        /// The manifest digest (`sha256:HEX`).
        var digest: String
        /// The OSTree commit the image carries (its `ostree.commit` label).
        var commit: String
        /// The image's `org.opencontainers.image.version`, when it has one.
        var version: String?
    }

    let repo: Repo
    let cache: OCILayout
    let work: String
    let progress: any ProgressSink
    let token: CancellationToken

    var skopeo: Skopeo { Skopeo(token: token, work: work) }

    /// Resolves `image` to a manifest digest and the commit it carries, reading the manifest and
    /// the configuration only (no layer): what `upgrade --check` needs.
    func inspect(_ image: ImageReference) throws -> (Pulled, manifest: OCI.Manifest) {
        var skopeo = skopeo
        skopeo.enforcePolicy = image.verification == .signed
        var bytes = try skopeo.manifest(image.source())
        var digest = OCI.digest(bytes)
        let type = OCI.mediaType(of: bytes)
        if type == OCI.indexType || type == OCI.dockerListType {
            let index = try OCI.decode(OCI.Index.self, bytes, what: "index")
            guard image.image.hasPrefix("docker://"),
                let entry = index.manifests.first(where: { $0.platform == OCI.Platform(architecture: "amd64", os: "linux") })
            else {
                throw EngineError(.invalidArgument, "\(image) is a multi-platform index with no linux/amd64 image apt-layer can use")
            }
            bytes = try skopeo.manifest(image.source(digest: entry.digest))
            guard OCI.digest(bytes) == entry.digest else {
                throw EngineError(.invalidArgument, "the manifest \(image) served is not the digest its index names (\(entry.digest))")
            }
            digest = entry.digest
        }
        if let pinned = image.digest, pinned != digest, type != OCI.indexType, type != OCI.dockerListType {
            throw EngineError(.invalidArgument, "\(image.image) has manifest digest \(digest), not the pinned \(pinned); nothing changed")
        }
        let manifest = try OCI.decode(OCI.Manifest.self, bytes, what: "manifest")
        let configBytes = try skopeo.configuration(image.source(digest: image.image.hasPrefix("docker://") ? digest : nil))
        guard OCI.digest(configBytes) == manifest.config.digest else {
            throw EngineError(.invalidArgument, "the configuration of \(image) does not match its digest \(manifest.config.digest)")
        }
        let configuration = try OCI.decode(OCI.Configuration.self, configBytes, what: "configuration")
        let labels = configuration.config?.Labels ?? [:]
        guard let commit = labels[OCI.commitLabel] else {
            throw EngineError(
                .invalidArgument,
                "\(image.image) is not an OSTree base image (no \(OCI.commitLabel) label): a plain container image has no kernel or boot contract; build a base with apt-layer compose oci"
            )
        }
        guard Engine.isFullChecksum(commit) else {
            throw EngineError(.invalidArgument, "the image's \(OCI.commitLabel) label is not a commit checksum")
        }
        guard manifest.layers.first?.annotations?[OCI.contentAnnotation] == "ostree-commit" else {
            throw EngineError(
                .invalidArgument,
                "\(image.image) carries no commit object layer (not made by apt-layer compose oci); cannot rebuild commit \(commit.prefix(12)) exactly"
            )
        }
        return (Pulled(digest: digest, commit: commit, version: labels["org.opencontainers.image.version"]), manifest)
    }

    /// Pulls `image` into the cache (blobs already there are not fetched again), checks it, and
    /// imports its commit unless that is already in the repository; returns what it holds.
    func pull(_ image: ImageReference) throws -> Pulled {
        progress.phase("Reading \(image)")
        let (pulled, manifest) = try inspect(image)

        try cache.create()
        var skopeo = skopeo
        skopeo.enforcePolicy = image.verification == .signed
        let name = String(pulled.digest.dropFirst("sha256:".count))
        progress.phase("Fetching \(manifest.layers.count) layers of \(image.image) (\(pulled.digest.prefix(19)))")
        let source = image.image.hasPrefix("docker://") ? image.source(digest: pulled.digest) : image.image
        let written = try skopeo.copy(source, to: "oci:\(cache.path):\(name)")
        guard written == pulled.digest else {
            throw EngineError(.invalidArgument, "\(image.image) changed during the pull (\(written), not \(pulled.digest)); nothing changed")
        }
        try token.check()
        for (n, layer) in manifest.layers.enumerated() { try cache.verifyBlob(layer.digest, what: "layer \(n + 1)") }

        // The commit object, exactly as the image carries it.
        let objectPath = "sysroot/ostree/repo/objects/\(pulled.commit.prefix(2))/\(pulled.commit.dropFirst(2)).commit"
        let objectFile = "\(work)/commit"
        let copied = try Subprocess.run(
            ["sh", "-c", #"exec tar -xzOf "$0" "$1" > "$2""#, cache.blobPath(manifest.layers[0].digest), objectPath, objectFile], token: token)
        guard copied.succeeded, let data = FileManager.default.contents(atPath: objectFile) else {
            throw EngineError(
                .invalidArgument, "the image's first layer holds no commit object for its \(OCI.commitLabel) label \(pulled.commit.prefix(12))")
        }
        let bytes = Array(data)
        guard SHA256.hex(bytes) == pulled.commit else {
            throw EngineError(
                .invalidArgument,
                "the image's commit object is \(SHA256.hex(bytes).prefix(12)), not its \(OCI.commitLabel) label \(pulled.commit.prefix(12)); nothing changed"
            )
        }

        // The commit is already here (an earlier pull, another transport): the image carries it
        // exactly (checked above), so there is nothing to import.
        if (try? repo.commit(pulled.commit)) != nil { return pulled }
        progress.phase("Importing commit \(pulled.commit.prefix(12))")
        do {
            try repo.importLayers(
                manifest.layers.dropFirst().map { cache.blobPath($0.digest) }, commit: bytes, checksum: pulled.commit, ref: nil,
                cancellable: token.cancellable)
        } catch {
            throw EngineError(
                .invalidArgument, "\(image.image) does not rebuild commit \(pulled.commit.prefix(12)): \(error); nothing changed", underlying: error)
        }
        return pulled
    }
}
