import COSTree
import Glibc

extension Repo {
    /// Commits commit `base` changed by an overlayfs upper directory, touching only what changed:
    /// the tree starts as `base` (subtrees load lazily), each overlay whiteout (a 0:0 character
    /// device) removes its path, each opaque directory (`trusted.overlay.opaque=y`) replaces its
    /// path, and every other entry of `upper` is written over it. Unchanged subtrees keep their
    /// checksums and are never read, so the cost follows the change, not the base's size.
    ///
    /// `upper` must no longer be mounted; it is consumed (whiteouts deleted, overlay xattrs
    /// stripped). `baseMetadata` names directories of `upper` the build made itself with the
    /// base's owner and mode ("" for the root): they keep the base's directory metadata, xattrs
    /// included. Returns the new commit checksum.
    public func writeCommit(
        overlay upper: String,
        onto base: String,
        baseMetadata: [String] = [""],
        parent: String?,
        subject: String,
        metadata: CommitMetadata,
        cancellable: Cancellable? = nil
    ) throws -> String {
        try gCheck("prepare transaction") { ostree_repo_prepare_transaction(raw, nil, cancellable?.raw, $0) }
        var committed = false
        defer { if !committed { _ = ostree_repo_abort_transaction(raw, nil, nil) } }

        let mtree = try gCall("load tree of \(base.prefix(12))") { ostree_mutable_tree_new_from_commit(raw, base, $0) }
        guard let mtree else {
            throw OSTreeError(domain: "apt-layer", code: 0, message: "no tree", operation: "load tree of \(base.prefix(12))")
        }
        defer { g_object_unref(UnsafeMutableRawPointer(mtree)) }
        var kept: [(path: String, checksum: String)] = []
        for path in baseMetadata {
            if let checksum = Self.metadataChecksum(of: path, in: mtree) { kept.append((path, checksum)) }
        }
        try Self.applyOverlayMarkers(directory: upper, tree: mtree)

        let modifier = ostree_repo_commit_modifier_new(OSTREE_REPO_COMMIT_MODIFIER_FLAGS_NONE, nil, nil, nil)!
        defer { ostree_repo_commit_modifier_unref(modifier) }
        try gCheck("write \(upper) to the repository") {
            ostree_repo_write_dfd_to_mtree(raw, AT_FDCWD, upper, mtree, modifier, cancellable?.raw, $0)
        }
        for (path, checksum) in kept {
            if let directory = Self.subtree(path, in: mtree) {
                ostree_mutable_tree_set_metadata_checksum(directory, checksum)
                g_object_unref(UnsafeMutableRawPointer(directory))
            }
        }
        return try finishCommit(mtree, parent: parent, subject: subject, metadata: metadata, ref: nil, cancellable: cancellable) {
            committed = true
        }
    }

    /// Removes from `tree` what the whiteouts and opaque directories under `directory` delete,
    /// deletes the whiteouts and strips overlayfs's own xattrs so neither is committed. `tree` is
    /// nil below a directory that does not exist in the base (nothing there to remove).
    private static func applyOverlayMarkers(directory: String, tree: OpaquePointer?) throws {
        stripOverlayAttributes(directory)
        guard let dir = opendir(directory) else { throw OSTreeError.posix("open \(directory)") }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names {
            let path = "\(directory)/\(name)"
            var info = stat()
            guard lstat(path, &info) == 0 else { throw OSTreeError.posix("stat \(path)") }
            switch info.st_mode & S_IFMT {
            case S_IFCHR where info.st_rdev == 0:
                if let tree { try gCheck("remove \(path) from the tree") { ostree_mutable_tree_remove(tree, name, 1, $0) } }
                guard unlink(path) == 0 else { throw OSTreeError.posix("remove whiteout \(path)") }
            case S_IFDIR:
                var subtree: OpaquePointer?
                if let tree {
                    if isOpaque(path) {
                        try gCheck("replace \(path) in the tree") { ostree_mutable_tree_remove(tree, name, 1, $0) }
                    } else {
                        let entry = lookup(name, in: tree)
                        subtree = entry.subtree
                        // A base file replaced by a directory: overlayfs marks nothing; drop the file.
                        if entry.isFile {
                            try gCheck("replace \(path) in the tree") { ostree_mutable_tree_remove(tree, name, 1, $0) }
                        }
                    }
                }
                defer { if let subtree { g_object_unref(UnsafeMutableRawPointer(subtree)) } }
                try applyOverlayMarkers(directory: path, tree: subtree)
            default:
                // A file, symlink or device replaces whatever the base had there; a base directory
                // replaced by one is not marked by overlayfs either, and the mutable tree refuses
                // to put a file over a directory: remove the entry, the write adds it back.
                if let tree { try gCheck("replace \(path) in the tree") { ostree_mutable_tree_remove(tree, name, 1, $0) } }
                stripOverlayAttributes(path)
            }
        }
    }

    /// What `tree` holds under `name`: a file, a subtree (a new reference), or neither.
    private static func lookup(_ name: String, in tree: OpaquePointer) -> (isFile: Bool, subtree: OpaquePointer?) {
        var file: UnsafeMutablePointer<CChar>?
        var subtree: OpaquePointer?
        var error: UnsafeMutablePointer<GError>?
        if ostree_mutable_tree_lookup(tree, name, &file, &subtree, &error) == 0 { g_error_free(error) }
        defer { g_free(file) }
        return (file != nil, subtree)
    }

    /// The subtree at `path` ("" for `tree` itself), as a new reference.
    private static func subtree(_ path: String, in tree: OpaquePointer) -> OpaquePointer? {
        var current = tree
        g_object_ref(UnsafeMutableRawPointer(current))
        for component in path.split(separator: "/") {
            let next = lookup(String(component), in: current).subtree
            g_object_unref(UnsafeMutableRawPointer(current))
            guard let next else { return nil }
            current = next
        }
        return current
    }

    private static func metadataChecksum(of path: String, in tree: OpaquePointer) -> String? {
        guard let directory = subtree(path, in: tree) else { return nil }
        defer { g_object_unref(UnsafeMutableRawPointer(directory)) }
        // Owned by the tree: copy it.
        return ostree_mutable_tree_get_metadata_checksum(directory).map { String(cString: $0) }
    }

    private static func isOpaque(_ path: String) -> Bool {
        var value: [CChar] = [0, 0]
        return lgetxattr(path, "trusted.overlay.opaque", &value, 1) == 1 && value[0] == CChar(UInt8(ascii: "y"))
    }

    private static func stripOverlayAttributes(_ path: String) {
        let size = llistxattr(path, nil, 0)
        guard size > 0 else { return }
        var buffer = [CChar](repeating: 0, count: size)
        let got = llistxattr(path, &buffer, size)
        guard got > 0 else { return }
        for name in buffer[..<got].split(separator: 0).map({ String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) })
        where name.hasPrefix("trusted.overlay.") {
            lremovexattr(path, name)
        }
    }
}
