import APTLayerModel
import Foundation
import OSTree

/// Brings an OCI image made by `compose oci` into the repository as the exact commit it carries.
///
/// skopeo reads the manifest (by digest once resolved, so a tag that moves during the pull cannot
/// mix two images) and copies the image into a cache that is itself an OCI layout
/// (`/ostree/apt-layer/images`): layers already there are not fetched again. An image pinned by
/// digest is read from the cache when it is there, else from a stored offline bundle that holds
/// it (`/ostree/apt-layer/bundles`), else from its own transport; the digest is checked whichever
/// answers. Every blob is checked against its digest, the commit object in the first layer against
/// the `ostree.commit` label, and the tree the other layers make against the tree that commit
/// names; only then is the commit object written. Nothing else in the repository or on the host
/// changes before that.
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

    /// An image's manifest as read, and where it was read from (a skopeo source).
    struct Inspected {
        var pulled: Pulled
        var manifest: OCI.Manifest
        /// The manifest exactly as served.
        var manifestBytes: [UInt8]
        /// The skopeo name of where it was read (for messages, and the copy from a transport).
        var source: String
        var origin: Origin
    }

    /// Where an image is read from.
    enum Origin {
        /// Its transport (a registry, a layout, an archive), through skopeo.
        case transport
        /// The cache itself: every blob is already there.
        case cache
        /// A stored offline bundle, read straight from its members.
        case bundle(TarArchive)

        var isCache: Bool { if case .cache = self { true } else { false } }
    }

    /// The largest commit object accepted (libostree's limit for metadata objects).
    static let maxCommitBytes = 10 << 20
    /// The largest manifest or configuration read from a bundle.
    static let maxDocumentBytes = 4 << 20

    let repo: Repo
    let cache: OCILayout
    /// Where stored offline bundles are (`*.bundle`, OCI archives).
    let bundles: String
    let work: String
    let progress: any ProgressSink
    let token: CancellationToken

    func skopeo(for image: ImageReference) -> Skopeo {
        Skopeo(token: token, work: work, enforcePolicy: image.verification == .signed)
    }

    /// Where a pinned image can be read without its transport: the cache (when the manifest, the
    /// configuration and every layer are there), or a stored bundle. Never for a signed reference:
    /// its signature is checked by skopeo's copy from the registry.
    private func localSource(_ image: ImageReference, pinned: String, useCache: Bool) -> (source: String, bytes: [UInt8], origin: Origin)? {
        guard image.verification == .unverified else { return nil }
        let hex = String(pinned.dropFirst("sha256:".count))
        if useCache, (try? cache.index())?.manifests.contains(where: { $0.digest == pinned }) == true,
            let bytes = try? cache.readBlob(pinned, what: "manifest"),
            let manifest = try? OCI.decode(OCI.Manifest.self, bytes, what: "manifest"),
            ([manifest.config] + manifest.layers).allSatisfy({
                (try? OCI.checkDigest($0.digest)) != nil && FileTree.exists(cache.blobPath($0.digest))
            })
        {
            return ("oci:\(cache.path):\(hex)", bytes, .cache)
        }
        // Newest bundle first (policy-N.bundle, the highest N). A bundle is an OCI archive: its
        // members are read in place (its tar headers walked), never extracted.
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: bundles)) ?? []).filter { $0.hasSuffix(".bundle") }
        let ordered = names.sorted { $0.count != $1.count ? $0.count > $1.count : $0 > $1 }
        for name in ordered {
            let path = "\(bundles)/\(name)"
            guard let archive = try? TarArchive(path: path), let data = try? archive.read(Self.member(pinned), limit: Self.maxDocumentBytes),
                OCI.digest(Array(data)) == pinned
            else { continue }
            return ("oci-archive:\(path):\(hex)", Array(data), .bundle(archive))
        }
        return nil
    }

    /// A blob's member name in an OCI archive.
    static func member(_ digest: String) -> String { "blobs/sha256/\(digest.dropFirst("sha256:".count))" }

    /// Copies the blobs of `manifest` the cache lacks out of `bundle`, then the manifest and its
    /// index entry (named by the digest's hex, as skopeo names it): what `skopeo copy` from the
    /// archive would do, without extracting the whole archive first. Digests are checked after.
    private func copy(_ manifest: OCI.Manifest, bytes: [UInt8], from bundle: TarArchive) throws {
        for blob in [manifest.config] + manifest.layers where !FileTree.exists(cache.blobPath(blob.digest)) {
            try token.check()
            // Half-written files in the layout's root are removed by the next collection.
            let partial = "\(cache.path)/partial-\(blob.digest.dropFirst("sha256:".count))"
            do { try bundle.copy(Self.member(blob.digest), to: partial) } catch {
                FileTree.remove(partial)
                throw EngineError(.invalidArgument, "the stored bundle is damaged: \(error)")
            }
            guard rename(partial, cache.blobPath(blob.digest)) == 0 else { throw FileTree.posixError("move \(partial) into the cache") }
        }
        let digest = OCI.digest(bytes)
        try FileTree.replaceDurably(cache.blobPath(digest), bytes)
        var index = try cache.index()
        let name = String(digest.dropFirst("sha256:".count))
        index.manifests.removeAll { $0.annotations?[OCI.refNameAnnotation] == name }
        index.manifests.append(
            OCI.Descriptor(
                mediaType: OCI.mediaType(of: bytes) ?? OCI.manifestType, digest: digest, size: Int64(bytes.count),
                annotations: [OCI.refNameAnnotation: name]))
        try cache.writeIndex(index)
    }

    /// Resolves `image` to a manifest digest and the commit it carries, reading the manifest and
    /// the configuration only (no layer): what `upgrade --check` needs.
    func inspect(_ image: ImageReference, useCache: Bool = true) throws -> Inspected {
        let skopeo = skopeo(for: image)
        var source = image.source()
        var origin = Origin.transport
        var bytes: [UInt8]
        if let pinned = image.digest, let found = localSource(image, pinned: pinned, useCache: useCache) {
            (source, bytes, origin) = (found.source, found.bytes, found.origin)
        } else {
            bytes = try skopeo.manifest(source)
        }
        // A pin names the bytes first served, index or manifest.
        if let pinned = image.digest, OCI.digest(bytes) != pinned {
            throw EngineError(.invalidArgument, "\(image.image) has manifest digest \(OCI.digest(bytes)), not the pinned \(pinned); nothing changed")
        }
        var digest = OCI.digest(bytes)
        let type = OCI.mediaType(of: bytes)
        if type == OCI.indexType || type == OCI.dockerListType {
            let index = try OCI.decode(OCI.Index.self, bytes, what: "index")
            guard source.hasPrefix("docker://"),
                let entry = index.manifests.first(where: { $0.platform == OCI.Platform(architecture: "amd64", os: "linux") })
            else {
                throw EngineError(.invalidArgument, "\(image) is a multi-platform index with no linux/amd64 image apt-layer can use")
            }
            try OCI.checkDigest(entry.digest)
            source = image.source(digest: entry.digest)
            bytes = try skopeo.manifest(source)
            guard OCI.digest(bytes) == entry.digest else {
                throw EngineError(.invalidArgument, "the manifest \(image) served is not the digest its index names (\(entry.digest))")
            }
            digest = entry.digest
        } else if source.hasPrefix("docker://") {
            source = image.source(digest: digest)
        }
        let manifest = try OCI.decode(OCI.Manifest.self, bytes, what: "manifest")
        for descriptor in [manifest.config] + manifest.layers { try OCI.checkDigest(descriptor.digest) }
        let configBytes: [UInt8]
        switch origin {
        case .cache: configBytes = try cache.readBlob(manifest.config.digest, what: "configuration")
        case .bundle(let bundle):
            do { configBytes = Array(try bundle.read(Self.member(manifest.config.digest), limit: Self.maxDocumentBytes)) } catch {
                throw EngineError(.invalidArgument, "the stored bundle is damaged: \(error)")
            }
        case .transport: configBytes = try skopeo.configuration(source)
        }
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
        let pulled = Pulled(digest: digest, commit: commit, version: labels["org.opencontainers.image.version"])
        return Inspected(pulled: pulled, manifest: manifest, manifestBytes: bytes, source: source, origin: origin)
    }

    /// Pulls `image` into the cache (blobs already there are not fetched again), checks it, and
    /// imports its commit unless that is already in the repository; returns what it holds. With
    /// `required`, an image carrying another commit is refused before any layer is fetched.
    func pull(_ image: ImageReference, required: String? = nil) throws -> Pulled {
        progress.phase("Reading \(image)")
        var found: Inspected
        do {
            found = try inspect(image)
            // A cached image read back whole (a blob changed on disk is deleted by verifyBlob).
            if found.origin.isCache { for layer in found.manifest.layers { try cache.verifyBlob(layer.digest, what: "cached layer") } }
        } catch  where image.digest != nil && (try? cache.index())?.manifests.contains(where: { $0.digest == image.digest }) == true {
            // A damaged cache entry: forget it and read the image from a bundle or its registry.
            progress.message("warning: the cached \(image.digest!.prefix(19)) is damaged (\(error)); fetching it again")
            if var index = try? cache.index() {
                index.manifests.removeAll { $0.digest == image.digest }
                try? cache.writeIndex(index)
            }
            found = try inspect(image, useCache: false)
        }
        let (pulled, manifest) = (found.pulled, found.manifest)
        if let required, pulled.commit != required {
            throw EngineError(
                .invalidArgument, "\(image) carries commit \(pulled.commit.prefix(12)), not the required \(required.prefix(12)); nothing changed")
        }

        try cache.create()
        let name = String(pulled.digest.dropFirst("sha256:".count))
        switch found.origin {
        case .bundle(let bundle):
            progress.phase("Copying \(manifest.layers.count) layers of \(image.image) (\(pulled.digest.prefix(19))) from \(bundle.path)")
            try copy(manifest, bytes: found.manifestBytes, from: bundle)
        case .transport:
            progress.phase("Fetching \(manifest.layers.count) layers of \(image.image) (\(pulled.digest.prefix(19)))")
            let written = try skopeo(for: image).copy(found.source, to: "oci:\(cache.path):\(name)")
            guard written == pulled.digest else {
                throw EngineError(.invalidArgument, "\(image.image) changed during the pull (\(written), not \(pulled.digest)); nothing changed")
            }
        case .cache: break  // every layer was re-hashed above
        }
        try token.check()
        if !found.origin.isCache {
            for (n, layer) in manifest.layers.enumerated() { try cache.verifyBlob(layer.digest, what: "layer \(n + 1)") }
        }

        // The commit object, exactly as the image carries it.
        let objectPath = "sysroot/ostree/repo/objects/\(pulled.commit.prefix(2))/\(pulled.commit.dropFirst(2)).commit"
        let objectFile = "\(work)/commit"
        // At most one byte more than the cap is written: a layer that inflates without end cannot
        // fill the disk. A missing member leaves the file empty.
        let copied = try Subprocess.run(
            [
                "sh", "-c", #"tar -xzOf "$0" "$1" | head -c "$3" > "$2""#, cache.blobPath(manifest.layers[0].digest), objectPath, objectFile,
                "\(Self.maxCommitBytes + 1)",
            ], token: token)
        guard copied.succeeded, let size = FileTree.lstatInfo(objectFile)?.st_size, size > 0 else {
            throw EngineError(
                .invalidArgument, "the image's first layer holds no commit object for its \(OCI.commitLabel) label \(pulled.commit.prefix(12))")
        }
        guard size <= Self.maxCommitBytes else {
            throw EngineError(.invalidArgument, "the image's commit object is more than the \(Self.maxCommitBytes) bytes allowed")
        }
        guard let data = FileManager.default.contents(atPath: objectFile) else { throw FileTree.posixError("read \(objectFile)") }
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
