import APTLayerModel
import Foundation
import OSTree

/// The OCI image format's documents as apt-layer writes and reads them (image-spec 1.0: a
/// descriptor, the manifest, the index, the configuration), plus Docker's schema 2 names, which
/// registries also serve.
enum OCI {
    static let manifestType = "application/vnd.oci.image.manifest.v1+json"
    static let indexType = "application/vnd.oci.image.index.v1+json"
    static let configType = "application/vnd.oci.image.config.v1+json"
    static let layerType = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let dockerManifestType = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerListType = "application/vnd.docker.distribution.manifest.list.v2+json"

    /// Label naming the OSTree commit an image encapsulates (ostree-ext's).
    static let commitLabel = "ostree.commit"
    /// Layer annotation: what the layer holds (`ostree-commit`, `packages`, `unpackaged`).
    static let contentAnnotation = "org.debian.apt-layer.content"
    /// Layer annotation: the dpkg packages whose files the layer holds, space-separated.
    static let packagesAnnotation = "org.debian.apt-layer.packages"
    /// Index annotation: the name (tag) of an image in a layout.
    static let refNameAnnotation = "org.opencontainers.image.ref.name"

    struct Platform: Codable, Hashable {
        var architecture: String
        var os: String
    }

    struct Descriptor: Codable, Hashable {
        var mediaType: String
        var digest: String
        var size: Int64
        var annotations: [String: String]? = nil
        var platform: Platform? = nil
    }

    struct Manifest: Codable {
        var schemaVersion = 2
        var mediaType: String? = OCI.manifestType
        var config: Descriptor
        var layers: [Descriptor]
    }

    struct Index: Codable {
        var schemaVersion = 2
        var mediaType: String? = nil
        var manifests: [Descriptor]
    }

    struct Configuration: Codable {
        struct Settings: Codable {
            var Labels: [String: String]?
        }
        struct RootFS: Codable {
            var type = "layers"
            var diff_ids: [String]
        }
        var architecture: String
        var os: String
        var created: String?
        var config: Settings?
        var rootfs: RootFS
    }

    /// Deterministic JSON (sorted keys, no escaped slashes): the same image writes the same bytes.
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], what: String) throws -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw EngineError(.invalidArgument, "the image's \(what) is not valid: \(error)", underlying: error)
        }
    }

    /// Refuses a descriptor digest that is not `sha256:` and 64 lowercase hex digits (it becomes a
    /// path in the cache).
    static func checkDigest(_ digest: String) throws {
        let hex = digest.dropFirst("sha256:".count)
        guard digest.hasPrefix("sha256:"), hex.count == 64, hex.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw EngineError(.invalidArgument, "the image names a blob by \(digest.prefix(80).debugDescription), not a sha256 digest")
        }
    }

    /// `sha256:HEX` of `bytes`.
    static func digest(_ bytes: [UInt8]) -> String { "sha256:\(SHA256.hex(bytes))" }

    /// The media type a manifest or index document declares (its `mediaType` member).
    static func mediaType(of bytes: [UInt8]) -> String? {
        struct Probe: Decodable { var mediaType: String? }
        return (try? JSONDecoder().decode(Probe.self, from: Data(bytes)))?.mediaType
    }
}

/// A directory in the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`).
struct OCILayout {
    let path: String

    func blobPath(_ digest: String) -> String { "\(path)/blobs/sha256/\(digest.dropFirst("sha256:".count))" }

    /// Creates the layout's skeleton.
    func create() throws {
        try FileTree.makeDirectory("\(path)/blobs/sha256")
        try FileTree.write("\(path)/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
    }

    /// Writes `bytes` as a blob; returns its descriptor.
    func writeBlob(_ bytes: [UInt8], mediaType: String, annotations: [String: String]? = nil) throws -> OCI.Descriptor {
        let digest = OCI.digest(bytes)
        try FileTree.replaceDurably(blobPath(digest), bytes)
        return OCI.Descriptor(mediaType: mediaType, digest: digest, size: Int64(bytes.count), annotations: annotations)
    }

    /// Moves a file in as a blob whose digest is known.
    func adoptBlob(_ file: String, digest: String, mediaType: String, annotations: [String: String]?) throws -> OCI.Descriptor {
        guard let info = FileTree.lstatInfo(file) else { throw FileTree.posixError("stat \(file)") }
        guard rename(file, blobPath(digest)) == 0 else { throw FileTree.posixError("move \(file) into the layout") }
        return OCI.Descriptor(mediaType: mediaType, digest: digest, size: Int64(info.st_size), annotations: annotations)
    }

    /// Reads a blob and checks it against its digest: a blob changed on disk is refused.
    func readBlob(_ digest: String, what: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: blobPath(digest)) else {
            throw EngineError(.notFound, "the image's \(what) \(digest) is missing")
        }
        let bytes = Array(data)
        guard OCI.digest(bytes) == digest else { throw EngineError(.invalidArgument, "the image's \(what) does not match its digest \(digest)") }
        return bytes
    }

    /// Checks a (large) blob against its digest without reading it into memory.
    func verifyBlob(_ digest: String, what: String) throws {
        let path = blobPath(digest)
        guard FileTree.exists(path) else { throw EngineError(.notFound, "the image's \(what) \(digest) is missing") }
        let actual: String
        do { actual = "sha256:\(try SHA256.hex(fileAt: path))" } catch { throw EngineError.wrap(error, "read \(what)") }
        guard actual == digest else {
            FileTree.remove(path)
            throw EngineError(.invalidArgument, "the image's \(what) does not match its digest \(digest) (got \(actual)); removed from the cache")
        }
    }

    /// The index, or an empty one when there is none yet.
    func index() throws -> OCI.Index {
        guard let data = FileManager.default.contents(atPath: "\(path)/index.json") else { return OCI.Index(manifests: []) }
        return try OCI.decode(OCI.Index.self, Array(data), what: "layout index")
    }

    func writeIndex(_ index: OCI.Index) throws { try FileTree.replaceDurably("\(path)/index.json", try OCI.encode(index)) }
}
