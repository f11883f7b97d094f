import APTLayerModel
import Foundation
import Glibc
import OSTree

/// `compose oci`: encapsulates a base commit as an OCI image.
///
/// The first layer carries the commit object (at `sysroot/ostree/repo/objects/XX/….commit`, where
/// ostree-ext carries it), the second every directory and the files no package owns, the third
/// the dpkg database's status files, then one layer per package group (``ImageLayers``). Layers are deterministic PAX tars (sorted, numeric
/// owners, mtime 0, xattrs kept, hardlinks between files of one layer that share an object) and
/// `gzip -n`, so an unchanged package group makes a byte-identical layer. The configuration carries
/// ostree-ext's labels (`ostree.commit`, `ostree.bootable`, `ostree.final-diffid`). The image is
/// written as an OCI layout, then skopeo copies it (digests preserved) to the destination:
/// `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or `docker://REGISTRY/NAME:TAG`.
struct ImageComposer {
    struct Options {
        var ref: String
        var destination: String
        /// An earlier image of this base (any skopeo transport, or an image reference): packages
        /// keep the layer groups they had there.
        var previous: String?
        var maxLayers = 64
    }

    /// What was written.
    struct Composed {
        var digest: String
        var commit: String
        var layers: Int
    }

    let repo: Repo
    let progress: any ProgressSink
    let token: CancellationToken

    func compose(_ options: Options) throws -> Composed {
        guard let checksum = try? repo.resolve(options.ref, allowMissing: true) else {
            throw EngineError(.notFound, "unknown ref: \(options.ref)")
        }
        let commit = try repo.commit(checksum)
        guard commit.bool(Layout.Key.clientLayer) != true else {
            throw EngineError(.invalidArgument, "\(options.ref) is a layered commit; compose oci takes a base")
        }
        let destination = options.destination
        guard ["oci:", "oci-archive:", "docker://"].contains(where: destination.hasPrefix) else {
            throw EngineError(.invalidArgument, "the destination must be oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REGISTRY/NAME:TAG")
        }
        let work: String
        do { work = try FileTree.temporaryDirectory(in: "\(repo.path)/tmp", prefix: "apt-layer-oci.") } catch {
            throw EngineError.wrap(error, "create a work directory")
        }
        defer { FileTree.remove(work) }
        let skopeo = Skopeo(token: token, work: work)
        let previousGroups = try options.previous.map { try groups(of: $0, skopeo: skopeo) } ?? []

        progress.phase("Checking out \(checksum.prefix(12))")
        let tree = "\(work)/tree"
        do {
            // A publishing repository (archive mode) stores objects compressed and cannot be checked
            // out with hardlinks: the commit goes through a bare repository in the work directory
            // first, so files sharing an object share an inode as from a bare repository, and the
            // image (its hardlinks included) is the same whatever the mode of the repository.
            var source = repo
            if repo.isArchive {
                source = try Repo.create(path: "\(work)/bare")
                let path = repo.path.hasPrefix("/") ? repo.path : FileManager.default.currentDirectoryPath + "/" + repo.path
                try source.pull(remote: "file://\(path)", ref: checksum, cancellable: token.cancellable)
            }
            try source.checkoutHardlinks(checksum, to: tree, cache: nil, cancellable: token.cancellable)
        } catch {
            throw EngineError.wrap(error, "check out \(checksum)")
        }
        let layout = OCILayout(path: "\(work)/layout")
        try layout.create()

        // Which layer each path goes to.
        let owners = ImageLayers.owners(tree: tree)
        var byPackage: [String: [String]] = [:]
        var unpackaged: [String] = []
        var dpkgState: [String] = []
        var directories: Set<String> = []
        var sizes: [String: Int] = [:]
        for path in FileTree.walk(tree) {
            guard let info = FileTree.lstatInfo("\(tree)/\(path)") else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                directories.insert(path)
                unpackaged.append(path)
            } else if ImageLayers.isDpkgState(path) {
                dpkgState.append(path)
            } else if let owner = owners[path] {
                byPackage[owner, default: []].append(path)
                sizes[owner, default: 0] += Int(info.st_size)
            } else {
                unpackaged.append(path)
            }
        }
        try token.check()
        let plan = ImageLayers.plan(sizes: sizes, previous: previousGroups, maxLayers: options.maxLayers)

        var layers: [OCI.Descriptor] = []
        var diffIDs: [String] = []
        func addLayer(_ paths: [String], in root: String, annotations: [String: String], withRoot: Bool) throws {
            var entries = Set<String>()
            for path in paths {
                entries.insert(path)
                var parent = (path as NSString).deletingLastPathComponent
                while !parent.isEmpty, entries.insert(parent).inserted { parent = (parent as NSString).deletingLastPathComponent }
            }
            let list = (withRoot ? ["."] : []) + entries.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            let n = layers.count
            let listFile = "\(work)/layer\(n).list"
            try FileTree.replaceDurably(listFile, Array(list.joined(separator: "\0").utf8) + [0])
            let tar = "\(work)/layer\(n).tar"
            try Subprocess.check(
                [
                    "tar", "--create", "--file", tar, "--directory", root, "--null", "--no-recursion", "--files-from", listFile,
                    "--numeric-owner", "--format=posix", "--mtime=@0", "--xattrs", "--xattrs-include=*",
                    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                ], token: token)
            try ImageLayers.orderXattrsForImport(tar: tar)
            diffIDs.append("sha256:\(try SHA256.hex(fileAt: tar))")
            try Subprocess.check(["gzip", "-n", "-6", tar], token: token)
            let digest = "sha256:\(try SHA256.hex(fileAt: "\(tar).gz"))"
            layers.append(try layout.adoptBlob("\(tar).gz", digest: digest, mediaType: OCI.layerType, annotations: annotations))
            try token.check()
        }

        // Layer 1: the commit object.
        let objectDir = "sysroot/ostree/repo/objects/\(checksum.prefix(2))"
        let commitRoot = "\(work)/commit"
        try FileTree.makeDirectory("\(commitRoot)/\(objectDir)")
        let objectPath = "\(objectDir)/\(checksum.dropFirst(2)).commit"
        try FileTree.replaceDurably("\(commitRoot)/\(objectPath)", commit.serialized)
        progress.phase("Writing \(plan.groups.count + ImageLayers.fixedLayers) layers")
        try addLayer([objectPath], in: commitRoot, annotations: [OCI.contentAnnotation: "ostree-commit"], withRoot: false)
        try addLayer(unpackaged, in: tree, annotations: [OCI.contentAnnotation: "unpackaged"], withRoot: true)
        try addLayer(dpkgState, in: tree, annotations: [OCI.contentAnnotation: "dpkg-status"], withRoot: true)
        for group in plan.groups {
            let paths = group.flatMap { byPackage[$0] ?? [] }
            try addLayer(
                paths, in: tree, annotations: [OCI.contentAnnotation: "packages", OCI.packagesAnnotation: group.joined(separator: " ")],
                withRoot: true)
        }

        var labels = [OCI.commitLabel: checksum, "ostree.bootable": "true", "ostree.final-diffid": diffIDs.last!]
        if let version = commit.string(Layout.Key.version) { labels["org.opencontainers.image.version"] = version }
        let created = Date(timeIntervalSince1970: TimeInterval(commit.timestamp))
        let configuration = OCI.Configuration(
            architecture: "amd64", os: "linux", created: ISO8601DateFormatter().string(from: created),
            config: .init(Labels: labels), rootfs: .init(diff_ids: diffIDs))
        let config = try layout.writeBlob(try OCI.encode(configuration), mediaType: OCI.configType)
        let manifestBytes = try OCI.encode(OCI.Manifest(config: config, layers: layers))
        let manifest = try layout.writeBlob(manifestBytes, mediaType: OCI.manifestType)
        var entry = manifest
        entry.annotations = [OCI.refNameAnnotation: "apt-layer"]
        try layout.writeIndex(OCI.Index(manifests: [entry]))

        progress.phase("Copying the image to \(destination)")
        let written = try skopeo.copy("oci:\(layout.path):apt-layer", to: destination)
        guard written == manifest.digest else {
            throw EngineError(.system, "skopeo wrote manifest \(written), not \(manifest.digest)")
        }
        return Composed(digest: manifest.digest, commit: checksum, layers: layers.count)
    }

    /// The package groups of an earlier image (its layers' annotations); the manifest only.
    func groups(of image: String, skopeo: Skopeo) throws -> [[String]] {
        let source = ImageReference.isImage(image) ? try ImageReference(parsing: image).source() : image
        let bytes = try skopeo.manifest(source)
        let manifest = try OCI.decode(OCI.Manifest.self, bytes, what: "manifest of \(image)")
        return manifest.layers.compactMap { $0.annotations?[OCI.packagesAnnotation]?.split(separator: " ").map(String.init) }
    }
}
