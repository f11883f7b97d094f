import APTLayerModel
import OSTree

/// A deployment's origin: which base ref it follows and what was requested on top.
///
/// Stored as an OSTree origin key file with rpm-ostree's group and key names.
public struct Origin: Sendable, Equatable {
    /// The base ref (`ref` or `remote:ref`) that `upgrade` follows.
    public var baseRefspec: String
    /// The requested layering.
    public var requested: RequestedState
    /// A commit the base is held at (`deploy VERSION|CHECKSUM`), or nil to follow the ref.
    public var overrideCommit: String?
    /// For an image base (``ImageReference``), the manifest digest deployed (`sha256:HEX`).
    public var imageDigest: String?

    /// Creates an origin.
    public init(baseRefspec: String, requested: RequestedState = RequestedState(), overrideCommit: String? = nil, imageDigest: String? = nil) {
        self.baseRefspec = baseRefspec
        self.requested = requested
        self.overrideCommit = overrideCommit
        self.imageDigest = imageDigest
    }

    /// The image the base follows, when the base is an OCI image rather than an OSTree ref.
    public var image: ImageReference? { ImageReference.isImage(baseRefspec) ? try? ImageReference(parsing: baseRefspec) : nil }

    /// Reads an origin key file; plain `ostree admin deploy` origins (`refspec=`) and rpm-ostree's
    /// image origins (`container-image-reference=`) are accepted too.
    public init?(keyFile: KeyFile) {
        guard
            let ref = keyFile.string("origin", "baserefspec") ?? keyFile.string("origin", "refspec")
                ?? keyFile.string("origin", "container-image-reference")
        else { return nil }
        baseRefspec = ref
        requested = RequestedState(
            packages: keyFile.stringList("packages", "requested"),
            localPackages: keyFile.stringList("packages", "requested-local").compactMap(LocalPackage.init(recordForm:)),
            removals: keyFile.stringList("overrides", "remove"),
            replacements: keyFile.stringList("overrides", "replace"),
            localReplacements: keyFile.stringList("overrides", "replace-local").compactMap(LocalPackage.init(recordForm:))
        )
        overrideCommit = keyFile.string("origin", "override-commit")
        imageDigest = keyFile.string("origin", "container-image-digest")
    }

    /// The origin as a key file.
    public var keyFile: KeyFile {
        let file = KeyFile()
        if image != nil {
            // rpm-ostree's keys for an image base; libostree's own tools ignore the group then.
            file.set("origin", "container-image-reference", baseRefspec)
            if let imageDigest { file.set("origin", "container-image-digest", imageDigest) }
        } else {
            file.set("origin", "baserefspec", baseRefspec)
        }
        if let overrideCommit { file.set("origin", "override-commit", overrideCommit) }
        file.set("packages", "requested", list: requested.packages)
        file.set("packages", "requested-local", list: requested.localPackages.map(\.recordForm))
        file.set("overrides", "remove", list: requested.removals)
        if !requested.replacements.isEmpty { file.set("overrides", "replace", list: requested.replacements) }
        if !requested.localReplacements.isEmpty { file.set("overrides", "replace-local", list: requested.localReplacements.map(\.recordForm)) }
        return file
    }
}
