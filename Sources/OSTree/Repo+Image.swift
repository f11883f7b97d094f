import COSTree
import Glibc

extension Commit {
    /// The commit object exactly as stored: the serialized `(a{sv}aya(say)sstayay)` variant whose
    /// SHA-256 is the commit's checksum. An OCI image carries these bytes so an importer can
    /// rebuild the very same commit.
    public var serialized: [UInt8] {
        var size = 0
        guard let data = aptl_variant_data(variant, &size) else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }
}

extension Repo {
    /// Imports tar layers (in order, later entries replacing earlier ones, directories merged;
    /// any compression libarchive reads) into one tree, and writes the commit object `commit`
    /// verbatim on top of it when the tree is the one that commit names and its checksum is
    /// `checksum`; then points `ref` at it.
    ///
    /// Two repository transactions as ``writeCommit(directory:parent:subject:metadata:ref:cache:cancellable:)``:
    /// a failure (a layer that does not read, a tree other than the commit's, a commit object whose
    /// checksum is not `checksum`) leaves at most unreferenced objects, which the next prune deletes.
    public func importLayers(_ tars: [String], commit: [UInt8], checksum: String, ref: String?, cancellable: Cancellable? = nil) throws {
        let paths = tars.map { strdup($0) }
        defer { paths.forEach { free($0) } }
        var constPaths = paths.map { UnsafePointer($0) }
        try gCheck("import the image's layers") { error in
            constPaths.withUnsafeMutableBufferPointer { pathsBuffer in
                commit.withUnsafeBytes { bytes in
                    aptl_import_layers(
                        raw, pathsBuffer.baseAddress, Int32(tars.count), bytes.baseAddress, gsize(bytes.count), checksum, ref,
                        cancellable?.raw, error)
                }
            }
        }
    }
}
