import APTLayerModel
import Foundation
import OSTree

extension Engine {
    /// What `compose oci` wrote.
    public struct ComposedImage: Sendable, Equatable {
        /// The manifest digest (`sha256:HEX`).
        public var digest: String
        /// The commit the image carries.
        public var commit: String
        /// Layers in the image, the commit object's included.
        public var layers: Int
    }

    /// `compose oci`: writes the base commit `ref` of `repo` (default: this sysroot's) as an OCI
    /// image to `destination` (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker://REGISTRY/NAME:TAG`);
    /// with `previous` (an earlier image of the base) packages keep the layers they had there.
    public func composeImage(
        ref: String, repo: String?, destination: String, previous: String? = nil, maxLayers: Int = 64, token: CancellationToken = .init()
    ) throws -> ComposedImage {
        guard maxLayers >= ImageLayers.minimumLayers, maxLayers <= 127 else {
            throw EngineError(.invalidArgument, "--max-layers must be between \(ImageLayers.minimumLayers) and 127")
        }
        let options = ImageComposer.Options(ref: ref, destination: destination, previous: previous, maxLayers: maxLayers)
        func compose(_ target: Repo) throws -> ComposedImage {
            let made = try ImageComposer(repo: target, progress: progress, token: token).compose(options)
            return ComposedImage(digest: made.digest, commit: made.commit, layers: made.layers)
        }
        // The sysroot's repository under the lock: every locked operation sweeps its tmp/.
        let own = "\(self.options.sysroot == "/" ? "" : self.options.sysroot)/ostree/repo"
        func resolved(_ path: String) -> String? {
            guard let real = realpath(path, nil) else { return nil }
            defer { free(real) }
            return String(cString: real)
        }
        if let repo {
            let given = resolved(repo)
            if given == nil || given != resolved(own) { return try compose(try composeRepo(repo)) }
        }
        return try locked("compose oci") { sysroot in try compose(try sysroot.repo()) }
    }

    /// The cache of pulled images: an OCI layout whose blobs later pulls reuse.
    var imageCache: OCILayout { OCILayout(path: "\(stateDirectory)/images") }

    /// Where the fleet driver keeps accepted offline bundles; a pinned image is read from one
    /// that holds it before its registry is asked.
    public var bundleDirectory: String { "\(stateDirectory)/bundles" }

    func importer(repo: Repo, work: String, token: CancellationToken) -> ImageImporter {
        ImageImporter(repo: repo, cache: imageCache, bundles: bundleDirectory, work: work, progress: progress, token: token)
    }

    /// Pulls `image` into the repository under the caller's lock; returns its digest and commit.
    /// With `required`, an image carrying another commit is refused before any layer is fetched.
    func pullImage(_ sysroot: Sysroot, _ image: ImageReference, required: String? = nil, token: CancellationToken) throws
        -> ImageImporter.Pulled
    {
        if image.verification == .signed { try Self.checkSignaturePolicy(for: image) }
        let repo = try sysroot.repo()
        let work: String
        do { work = try FileTree.temporaryDirectory(in: "\(repo.path)/tmp", prefix: "apt-layer-image.") } catch {
            throw EngineError.wrap(error, "create a work directory")
        }
        defer { FileTree.remove(work) }
        let cached = Set(((try? imageCache.index())?.manifests ?? []).map(\.digest))
        do {
            return try importer(repo: repo, work: work, token: token).pull(image, required: required)
        } catch {
            // A refused or failed pull leaves the cache as it was: what it added goes again
            // (whatever commit its label claims).
            pruneImageCache { digest, _ in cached.contains(digest) }
            throw error
        }
    }

    /// `upgrade --check` for an image base: reads the manifest and configuration the reference
    /// points at now (no layer; a pinned digest from the cache) and compares the digest with the
    /// deployed one.
    func checkImageUpgrade(_ image: ImageReference, deployed: String?, token: CancellationToken) throws -> ChangeResult {
        if image.verification == .signed { try Self.checkSignaturePolicy(for: image) }
        let work: String
        do { work = try FileTree.temporaryDirectory(in: "\(stateDirectory)/tmp", prefix: "image-check.") } catch {
            throw EngineError.wrap(error, "create a work directory")
        }
        defer { FileTree.remove(work) }
        let found = try importer(repo: try openSysroot().repo(), work: work, token: token).inspect(image).pulled
        if found.digest == deployed {
            return ChangeResult(changed: false, summary: "No change: \(image) is still \(found.digest).")
        }
        let version = found.version.map { ", version \($0)" } ?? ""
        return ChangeResult(
            changed: true, summary: "Would deploy \(image) \(found.digest) (commit \(found.commit.prefix(12))\(version)).",
            checksum: found.commit)
    }

    /// The origin of the pending deployment (what a change builds on), read without the lock.
    func pendingOrigin() throws -> Origin? {
        let sysroot = try openSysroot()
        return deployments(sysroot, try osname(sysroot)).first?.origin.flatMap(Origin.init(keyFile:))
    }

    /// Drops cached images whose commit no deployment or ref uses any more, and blobs no remaining
    /// image needs: layers go with the deployments that used them.
    func collectImages(_ sysroot: Sysroot) {
        guard let referenced = try? referencedCommits(sysroot) else { return }
        pruneImageCache { _, commit in commit.map(referenced.contains) ?? false }
    }

    /// Keeps the cached images `keep` accepts (given the manifest digest and the commit its label
    /// names), removes the others from the index, then every blob no kept image needs and anything
    /// else in the layout's root (a blob a killed copy left half-written).
    func pruneImageCache(keep: (_ manifest: String, _ commit: String?) -> Bool) {
        let cache = imageCache
        guard FileTree.exists("\(cache.path)/index.json"), var index = try? cache.index() else { return }
        var needed: Set<String> = []
        index.manifests.removeAll { entry in
            let manifest = (try? cache.readBlob(entry.digest, what: "manifest")).flatMap { try? OCI.decode(OCI.Manifest.self, $0, what: "manifest") }
            let configuration = manifest.flatMap { try? cache.readBlob($0.config.digest, what: "configuration") }
                .flatMap { try? OCI.decode(OCI.Configuration.self, $0, what: "configuration") }
            guard let manifest, keep(entry.digest, configuration?.config?.Labels?[OCI.commitLabel]) else { return true }
            needed.formUnion([entry.digest, manifest.config.digest] + manifest.layers.map(\.digest))
            return false
        }
        do { try cache.writeIndex(index) } catch { return }
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: "\(cache.path)/blobs/sha256")) ?? []
        for blob in blobs where !needed.contains("sha256:\(blob)") { FileTree.remove("\(cache.path)/blobs/sha256/\(blob)") }
        let root = (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []
        for name in root where !["oci-layout", "index.json", "blobs"].contains(name) { FileTree.remove("\(cache.path)/\(name)") }
    }

    /// `ostree-image-signed:` is refused when containers-policy.json would accept the image
    /// without a signature (its requirement for the image's scope is `insecureAcceptAnything`):
    /// "signed" must mean a signature was checked.
    static func checkSignaturePolicy(for image: ImageReference, path: String = Skopeo.policyPath) throws {
        struct Requirement: Decodable { var type: String }
        struct Policy: Decodable {
            var `default`: [Requirement]?
            var transports: [String: [String: [Requirement]]]?
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EngineError(.refused, "ostree-image-signed: needs a signature policy in \(path)")
        }
        let policy: Policy
        do { policy = try JSONDecoder().decode(Policy.self, from: data) } catch {
            throw EngineError(.refused, "ostree-image-signed: \(path) does not parse: \(error)", underlying: error)
        }
        // A name without a registry host would be normalised by skopeo (docker.io/library/…),
        // under scopes this check would not look at.
        let name = String(image.image.dropFirst("docker://".count))
        let first = name.split(separator: "/").first ?? ""
        guard first.contains(".") || first.contains(":") || first == "localhost" else {
            throw EngineError(.refused, "ostree-image-signed: name the registry host in \(image.image) (REGISTRY/NAME)")
        }
        let docker = policy.transports?["docker"] ?? [:]
        let requirements = Self.policyScopes(for: name).lazy.compactMap { docker[$0] }.first ?? policy.default ?? []
        if requirements.isEmpty || requirements.allSatisfy({ $0.type == "insecureAcceptAnything" }) {
            throw EngineError(
                .refused,
                "ostree-image-signed: \(path) accepts \(name) without a signature (insecureAcceptAnything); add a signedBy requirement for it, or use ostree-unverified-registry:"
            )
        }
    }

    /// The scopes containers-policy.json(5) looks a docker image copied by digest up under, most
    /// specific first: the repository, each enclosing namespace,
    /// the registry host[:port], then wildcard domains (`*.example.com`, `*.com`), then the
    /// transport's default (`""`).
    static func policyScopes(for name: String) -> [String] {
        // Images are copied by digest, so skopeo never looks the tag's scope up: the repository first.
        var repository = name
        if let at = repository.firstIndex(of: "@") { repository = String(repository[..<at]) }
        if let slash = repository.lastIndex(of: "/"), let colon = repository[slash...].lastIndex(of: ":") {
            repository = String(repository[..<colon])
        }
        var scopes = [repository]
        var namespace = repository
        while let slash = namespace.lastIndex(of: "/") {
            namespace = String(namespace[..<slash])
            scopes.append(namespace)
        }
        // Wildcards apply to a host name (not an address), without its port.
        let host = namespace.split(separator: ":").first.map(String.init) ?? namespace
        var labels = host.split(separator: ".").map(String.init)
        while labels.count > 1, !host.allSatisfy({ $0.isNumber || $0 == "." }) {
            labels.removeFirst()
            scopes.append("*." + labels.joined(separator: "."))
        }
        return scopes + [""]
    }
}
