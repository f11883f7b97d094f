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
        let composer = ImageComposer(repo: try composeRepo(repo), progress: progress, token: token)
        let made = try composer.compose(.init(ref: ref, destination: destination, previous: previous, maxLayers: maxLayers))
        return ComposedImage(digest: made.digest, commit: made.commit, layers: made.layers)
    }

    /// The cache of pulled images: an OCI layout whose blobs later pulls reuse.
    var imageCache: OCILayout { OCILayout(path: "\(stateDirectory)/images") }

    /// Pulls `image` into the repository under the caller's lock; returns its digest and commit.
    func pullImage(_ sysroot: Sysroot, _ image: ImageReference, token: CancellationToken) throws -> ImageImporter.Pulled {
        if image.verification == .signed { try Self.checkSignaturePolicy(for: image) }
        let repo = try sysroot.repo()
        let work: String
        do { work = try FileTree.temporaryDirectory(in: "\(repo.path)/tmp", prefix: "apt-layer-image.") } catch {
            throw EngineError.wrap(error, "create a work directory")
        }
        defer { FileTree.remove(work) }
        let importer = ImageImporter(repo: repo, cache: imageCache, work: work, progress: progress, token: token)
        return try importer.pull(image)
    }

    /// `upgrade --check` for an image base: reads the manifest and configuration the tag points at
    /// now (no layer) and compares the digest with the deployed one.
    func checkImageUpgrade(_ image: ImageReference, deployed: String?, token: CancellationToken) throws -> ChangeResult {
        if image.verification == .signed { try Self.checkSignaturePolicy(for: image) }
        let work = try FileTree.temporaryDirectory(in: "\(stateDirectory)/tmp", prefix: "image-check.")
        defer { FileTree.remove(work) }
        let importer = ImageImporter(
            repo: try openSysroot().repo(), cache: imageCache, work: work, progress: progress, token: token)
        let (found, _) = try importer.inspect(image.following)
        if found.digest == deployed {
            return ChangeResult(changed: false, summary: "No change: \(image.following) is still \(found.digest).")
        }
        let version = found.version.map { ", version \($0)" } ?? ""
        return ChangeResult(
            changed: true, summary: "Would deploy \(image.following) \(found.digest) (commit \(found.commit.prefix(12))\(version)).",
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
        let cache = imageCache
        guard FileTree.exists("\(cache.path)/index.json"), var index = try? cache.index(),
            let referenced = try? referencedCommits(sysroot)
        else { return }
        var keep: Set<String> = []
        index.manifests.removeAll { entry in
            guard let bytes = try? cache.readBlob(entry.digest, what: "manifest"),
                let manifest = try? OCI.decode(OCI.Manifest.self, bytes, what: "manifest"),
                let configBytes = try? cache.readBlob(manifest.config.digest, what: "configuration"),
                let configuration = try? OCI.decode(OCI.Configuration.self, configBytes, what: "configuration"),
                let commit = configuration.config?.Labels?[OCI.commitLabel], referenced.contains(commit)
            else { return true }
            keep.formUnion([entry.digest, manifest.config.digest] + manifest.layers.map(\.digest))
            return false
        }
        do { try cache.writeIndex(index) } catch { return }
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: "\(cache.path)/blobs/sha256")) ?? []
        for blob in blobs where !keep.contains("sha256:\(blob)") { FileTree.remove("\(cache.path)/blobs/sha256/\(blob)") }
    }

    /// `ostree-image-signed:` is refused when containers-policy.json would accept the image
    /// without a signature (its requirement for the image's scope is `insecureAcceptAnything`):
    /// "signed" must mean a signature was checked.
    static func checkSignaturePolicy(for image: ImageReference, path: String = "/etc/containers/policy.json") throws {
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
            throw EngineError(.refused, "ostree-image-signed: \(path) does not parse: \(error)")
        }
        let name = String(image.image.dropFirst("docker://".count))
        var scopes: [String] = [name]
        var cut = name
        while let end = cut.lastIndex(where: { $0 == "/" || $0 == ":" }) {
            cut = String(cut[..<end])
            scopes.append(cut)
        }
        let docker = policy.transports?["docker"] ?? [:]
        let requirements = scopes.lazy.compactMap { docker[$0] }.first ?? docker[""] ?? policy.default ?? []
        if requirements.isEmpty || requirements.allSatisfy({ $0.type == "insecureAcceptAnything" }) {
            throw EngineError(
                .refused,
                "ostree-image-signed: \(path) accepts \(name) without a signature (insecureAcceptAnything); add a signedBy requirement for it, or use ostree-unverified-registry:"
            )
        }
    }
}
