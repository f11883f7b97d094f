import COSTree
import Glibc

/// An OSTree repository.
///
/// `@unchecked Sendable`: an `OstreeRepo` is used by one engine transaction at a time, under the
/// sysroot lock; libostree's own repo locking covers concurrent processes.
public final class Repo: @unchecked Sendable {
    let raw: OpaquePointer
    /// The repository's directory.
    public let path: String

    /// Takes ownership of a reference (transfer full).
    init(owning raw: OpaquePointer, path: String) {
        self.raw = raw
        self.path = path
    }

    deinit { aptl_unref(UnsafeMutableRawPointer(raw)) }

    /// Opens the repository at `path`.
    public convenience init(path: String) throws {
        let file = g_file_new_for_path(path)!
        defer { g_object_unref(UnsafeMutableRawPointer(file)) }
        let repo = ostree_repo_new(file)!
        self.init(owning: repo, path: path)
        try gCheck("open repository \(path)") { ostree_repo_open(repo, nil, $0) }
    }

    /// Creates (or opens) a repository of mode `bare` at `path`.
    public static func create(path: String) throws -> Repo {
        let file = g_file_new_for_path(path)!
        defer { g_object_unref(UnsafeMutableRawPointer(file)) }
        let raw = ostree_repo_new(file)!
        let repo = Repo(owning: raw, path: path)
        try gCheck("create repository \(path)") { ostree_repo_create(raw, OSTREE_REPO_MODE_BARE, nil, $0) }
        return repo
    }

    /// Whether objects are stored compressed for serving over HTTP (`archive`, the mode a publishing
    /// repository has): such a repository cannot be checked out with hardlinks.
    public var isArchive: Bool { ostree_repo_get_mode(raw) == OSTREE_REPO_MODE_ARCHIVE }

    /// Resolves a ref, remote:ref or checksum to a commit checksum; nil when `allowMissing` and absent.
    public func resolve(_ refspec: String, allowMissing: Bool = false) throws -> String? {
        var out: UnsafeMutablePointer<CChar>?
        try gCheck("resolve \(refspec)") { ostree_repo_resolve_rev(raw, refspec, allowMissing ? 1 : 0, &out, $0) }
        return takeString(out)
    }

    /// Loads a commit object.
    public func commit(_ checksum: String) throws -> Commit {
        var variant: OpaquePointer?
        try gCheck("load commit \(checksum)") { ostree_repo_load_variant(raw, OSTREE_OBJECT_TYPE_COMMIT, checksum, &variant, $0) }
        return Commit(checksum: checksum, owning: variant!)
    }

    /// The contents of the regular file at `path` (relative to the tree's root) in commit `rev`.
    public func readFile(_ path: String, in rev: String) throws -> [UInt8] {
        guard let bytes = try gCall("read \(path) in \(rev.prefix(12))", { aptl_read_commit_file(raw, rev, path, nil, $0) }) else { return [] }
        defer { g_bytes_unref(bytes) }
        var size = 0
        guard let data = g_bytes_get_data(bytes, &size), size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// Points `ref` at `checksum`, or deletes it when `checksum` is nil.
    public func setRef(_ ref: String, to checksum: String?) throws {
        try gCheck("set ref \(ref)") { ostree_repo_set_ref_immediate(raw, nil, ref, checksum, nil, $0) }
    }

    /// Local refs whose names start with `prefix` (full names).
    public func refs(prefix: String? = nil) throws -> [String] {
        let list = try gCall("list refs") { aptl_list_refs(raw, prefix, nil, $0) }
        return (takeStrv(list) ?? []).sorted()
    }

    /// Deletes a commit object and its detached metadata, nothing it points to. For a commit whose
    /// tree another commit still has; anything else is for a prune.
    public func deleteCommitObject(_ checksum: String) throws {
        try gCheck("delete commit \(checksum.prefix(12))") { ostree_repo_delete_object(raw, OSTREE_OBJECT_TYPE_COMMIT, checksum, nil, $0) }
        var error: UnsafeMutablePointer<GError>?
        if ostree_repo_delete_object(raw, OSTREE_OBJECT_TYPE_COMMIT_META, checksum, nil, &error) == 0 { g_error_free(error) }
    }

    /// Runs `body` holding the repository's exclusive lock (the one libostree's prune takes), so no
    /// other process writes refs or objects meanwhile.
    public func withExclusiveLock<T>(_ body: () throws -> T) throws -> T {
        try gCheck("lock repository") { ostree_repo_lock_push(raw, OSTREE_REPO_LOCK_EXCLUSIVE, nil, $0) }
        defer {
            var error: UnsafeMutablePointer<GError>?
            if ostree_repo_lock_pop(raw, OSTREE_REPO_LOCK_EXCLUSIVE, nil, &error) == 0 { g_error_free(error) }
        }
        return try body()
    }

    /// Sets a key in the repository's `config` file.
    public func setConfig(group: String, key: String, value: String) throws {
        let config = ostree_repo_copy_config(raw)!
        defer { g_key_file_unref(config) }
        g_key_file_set_string(config, group, key, value)
        try gCheck("write repository config") { ostree_repo_write_config(raw, config, $0) }
    }

    /// The configured remotes' names.
    public var remotes: [String] {
        takeStrv(ostree_repo_remote_list(raw, nil)) ?? []
    }

    /// Adds the remote `name` at `url`, or points an existing one there, without GPG verification:
    /// what is pulled from it is pinned by commit checksum.
    public func setRemote(name: String, url: String) throws {
        let builder = aptl_vardict_new()!
        aptl_vardict_add_bool(builder, "gpg-verify", 0)
        let options = aptl_vardict_end(builder)
        defer { g_variant_unref(options) }
        try gCheck("configure remote \(name)") {
            ostree_repo_remote_change(raw, nil, OSTREE_REPO_REMOTE_CHANGE_REPLACE, name, url, options, nil, $0)
        }
    }

    /// The URL of remote `name`, if configured.
    public func remoteURL(_ name: String) -> String? {
        var out: UnsafeMutablePointer<CChar>?
        guard ostree_repo_remote_get_url(raw, name, &out, nil) != 0, let out else { return nil }
        defer { g_free(out) }
        return String(cString: out)
    }

    /// Pulls `ref` from `remote` (the network, or a `file://` remote).
    public func pull(remote: String, ref: String, cancellable: Cancellable? = nil) throws {
        try withStrv([ref]) { refs in
            try gCheck("pull \(remote):\(ref)") {
                ostree_repo_pull(raw, remote, refs, OSTREE_REPO_PULL_FLAGS_NONE, nil, cancellable?.raw, $0)
            }
        }
    }

    /// Checks `rev` out into `path` (which must not exist) with hardlinks into the repository.
    /// - Parameters:
    ///   - cache: remembers device/inode → checksum, so a later ``writeCommit(directory:parent:subject:metadata:cache:cancellable:)``
    ///     of the same tree costs a `stat` per unchanged file.
    public func checkoutHardlinks(_ rev: String, to path: String, cache: DevInoCache?, cancellable: Cancellable?) throws {
        try gCheck("check out \(rev)") {
            aptl_checkout_hardlinks(raw, AT_FDCWD, path, rev, cache?.raw, cancellable?.raw, $0)
        }
    }

    /// Commits the directory `directory` with `parent`, `subject` and `metadata`, in its own repo transaction,
    /// and points `ref` at it when given. Returns the new commit checksum.
    public func writeCommit(
        directory: String,
        parent: String?,
        subject: String,
        metadata: CommitMetadata,
        ref: String? = nil,
        cache: DevInoCache? = nil,
        cancellable: Cancellable? = nil
    ) throws -> String {
        try gCheck("prepare transaction") { ostree_repo_prepare_transaction(raw, nil, cancellable?.raw, $0) }
        var committed = false
        defer { if !committed { _ = ostree_repo_abort_transaction(raw, nil, nil) } }

        let mtree = ostree_mutable_tree_new()!
        defer { g_object_unref(UnsafeMutableRawPointer(mtree)) }
        let modifier = ostree_repo_commit_modifier_new(OSTREE_REPO_COMMIT_MODIFIER_FLAGS_NONE, nil, nil, nil)!
        defer { ostree_repo_commit_modifier_unref(modifier) }
        if let cache { ostree_repo_commit_modifier_set_devino_cache(modifier, cache.raw) }

        try gCheck("write \(directory) to the repository") {
            ostree_repo_write_dfd_to_mtree(raw, AT_FDCWD, directory, mtree, modifier, cancellable?.raw, $0)
        }
        return try finishCommit(mtree, parent: parent, subject: subject, metadata: metadata, ref: ref, cancellable: cancellable) {
            committed = true
        }
    }

    /// Writes `mtree` as a commit and commits the open transaction; `done` runs once the open
    /// transaction is over.
    ///
    /// Two repository transactions, so a commit object never exists without its tree: libostree
    /// moves a transaction's staged objects into place in directory order, so a process killed
    /// during that move can leave the commit object in `objects/` and part of its tree still in
    /// staging, which `ostree fsck` reports as a corrupt commit (issue 26). The first transaction
    /// writes the tree (dirtrees, dirmeta, files), the second only the commit object and the ref:
    /// a kill during the first leaves unreferenced objects, during the second at most a complete
    /// commit that no ref names; the next prune deletes either.
    func finishCommit(
        _ mtree: OpaquePointer, parent: String?, subject: String, metadata: CommitMetadata, ref: String?, cancellable: Cancellable?,
        done: () -> Void
    ) throws -> String {
        var root: OpaquePointer?
        try gCheck("write tree") { ostree_repo_write_mtree(raw, mtree, &root, cancellable?.raw, $0) }
        defer { aptl_unref(UnsafeMutableRawPointer(root)) }
        try gCheck("commit tree") { ostree_repo_commit_transaction(raw, nil, cancellable?.raw, $0) }
        done()

        try gCheck("prepare transaction") { ostree_repo_prepare_transaction(raw, nil, cancellable?.raw, $0) }
        var committed = false
        defer { if !committed { _ = ostree_repo_abort_transaction(raw, nil, nil) } }
        let variant = metadata.makeVariant()
        defer { g_variant_unref(variant) }
        var checksum: UnsafeMutablePointer<CChar>?
        try gCheck("write commit") {
            ostree_repo_write_commit(raw, parent, subject, nil, variant, root, &checksum, cancellable?.raw, $0)
        }
        let result = takeString(checksum)!
        if let ref { ostree_repo_transaction_set_ref(raw, nil, ref, result) }
        try gCheck("commit transaction") { ostree_repo_commit_transaction(raw, nil, cancellable?.raw, $0) }
        committed = true
        return result
    }
}

/// A device/inode → checksum cache shared between a hardlink checkout and the commit of the same tree.
///
/// `@unchecked Sendable`: used by one transaction at a time.
public final class DevInoCache: @unchecked Sendable {
    let raw: OpaquePointer
    /// Creates an empty cache.
    public init() { raw = ostree_repo_devino_cache_new() }
    deinit { ostree_repo_devino_cache_unref(raw) }
}
