import COSTree
import Glibc

/// An OSTree sysroot (`/`, or a directory holding `ostree/` and `boot/`).
///
/// `@unchecked Sendable`: a sysroot object is used by one engine transaction at a time; mutation is
/// serialised across processes by the sysroot lock (``tryLock()``).
public final class Sysroot: @unchecked Sendable {
    let raw: OpaquePointer
    /// The sysroot's directory.
    public let path: String

    /// Creates a handle for the sysroot at `path`; call ``load(cancellable:)`` before use.
    public init(path: String) {
        self.path = path
        let file = g_file_new_for_path(path)!
        defer { g_object_unref(UnsafeMutableRawPointer(file)) }
        raw = ostree_sysroot_new(file)
    }

    deinit { g_object_unref(UnsafeMutableRawPointer(raw)) }

    /// Lays out an empty sysroot (what `ostree admin init-fs` does).
    public func ensureInitialized() throws {
        try gCheck("initialise sysroot \(path)") { ostree_sysroot_ensure_initialized(raw, nil, $0) }
    }

    /// Creates the stateroot `name` (what `ostree admin os-init` does).
    public func initStateroot(_ name: String) throws {
        try gCheck("create stateroot \(name)") { ostree_sysroot_init_osname(raw, name, nil, $0) }
    }

    /// Loads (or reloads) the deployment list.
    public func load(cancellable: Cancellable? = nil) throws {
        try gCheck("load sysroot \(path)") { ostree_sysroot_load(raw, cancellable?.raw, $0) }
    }

    /// Takes the sysroot lock without waiting; false when another process holds it.
    public func tryLock() throws -> Bool {
        var acquired: gboolean = 0
        try gCheck("lock sysroot") { ostree_sysroot_try_lock(raw, &acquired, $0) }
        return acquired != 0
    }

    /// Takes the sysroot lock, waiting for it (blocks the calling thread).
    public func lock() throws {
        try gCheck("lock sysroot") { ostree_sysroot_lock(raw, $0) }
    }

    /// Releases the sysroot lock.
    public func unlock() { ostree_sysroot_unlock(raw) }

    /// The deployments, in boot order (index 0 is the default).
    public var deployments: [Deployment] {
        guard let array = ostree_sysroot_get_deployments(raw) else { return [] }
        defer { g_ptr_array_unref(array) }
        return (0..<aptl_ptr_array_len(array)).map {
            Deployment(borrowing: OpaquePointer(aptl_ptr_array_index(array, $0))!)
        }
    }

    /// The deployment the running system booted, when this sysroot is `/` of a booted host.
    public var booted: Deployment? {
        ostree_sysroot_get_booted_deployment(raw).map { Deployment(borrowing: $0) }
    }

    /// Whether this sysroot is the running system's.
    public var isBooted: Bool { ostree_sysroot_is_booted(raw) != 0 }

    /// The deployment whose /etc a new deployment of `osname` merges with.
    public func mergeDeployment(osname: String) -> Deployment? {
        ostree_sysroot_get_merge_deployment(raw, osname).map { Deployment(owning: $0) }
    }

    /// The absolute directory of a deployment's tree.
    public func directory(of deployment: Deployment) -> String {
        let relative = takeString(ostree_sysroot_get_deployment_dirpath(raw, deployment.raw)) ?? ""
        return path == "/" ? "/" + relative : path + "/" + relative
    }

    /// The sysroot's repository.
    public func repo() throws -> Repo {
        var repo: OpaquePointer?
        try gCheck("open sysroot repository") { ostree_sysroot_get_repo(raw, &repo, nil, $0) }
        return Repo(owning: repo!, path: path == "/" ? "/ostree/repo" : "\(path)/ostree/repo")
    }

    /// Deploys (or, when `stage`, stages) `revision` with `origin`, merging /etc from `merge`.
    /// - Parameters:
    ///   - kernelArguments: replaces the kernel command line; nil keeps the merge deployment's.
    public func deploy(
        osname: String,
        revision: String,
        origin: KeyFile,
        merge: Deployment?,
        kernelArguments: [String]?,
        stage: Bool,
        cancellable: Cancellable?
    ) throws -> Deployment {
        var out: OpaquePointer?
        try ForkReaper.reaping {
            try deploy(
                osname: osname, revision: revision, origin: origin, merge: merge, kernelArguments: kernelArguments, stage: stage, out: &out,
                cancellable: cancellable)
        }
        return Deployment(owning: out!)
    }

    private func deploy(
        osname: String, revision: String, origin: KeyFile, merge: Deployment?, kernelArguments: [String]?, stage: Bool,
        out: inout OpaquePointer?, cancellable: Cancellable?
    ) throws {
        if let kernelArguments {
            try withStrv(kernelArguments) { argv in
                try gCheck(stage ? "stage deployment" : "deploy \(revision)") {
                    aptl_deploy(raw, osname, revision, origin.raw, merge?.raw, argv, stage ? 1 : 0, &out, cancellable?.raw, $0)
                }
            }
        } else {
            try gCheck(stage ? "stage deployment" : "deploy \(revision)") {
                aptl_deploy(raw, osname, revision, origin.raw, merge?.raw, nil, stage ? 1 : 0, &out, cancellable?.raw, $0)
            }
        }
    }

    /// Writes `new` as the default deployment, keeping the previous default as rollback and pinned ones.
    public func writeNewDefault(osname: String, new: Deployment, merge: Deployment?) throws {
        let flags = OstreeSysrootSimpleWriteDeploymentFlags(
            OSTREE_SYSROOT_SIMPLE_WRITE_DEPLOYMENT_FLAGS_RETAIN_ROLLBACK.rawValue
                | OSTREE_SYSROOT_SIMPLE_WRITE_DEPLOYMENT_FLAGS_NO_CLEAN.rawValue)
        try ForkReaper.reaping {
            try gCheck("write deployments") { ostree_sysroot_simple_write_deployment(raw, osname, new.raw, merge?.raw, flags, nil, $0) }
        }
    }

    /// Replaces the deployment list with `deployments`, in that boot order.
    /// - Parameter cleanUp: let libostree clean up afterwards (delete undeployed directories and
    ///   prune the repository, which walks every ref's tree). Callers that only reorder
    ///   (rollback), or that run ``cleanup(cancellable:)`` themselves, pass false.
    public func writeDeployments(_ deployments: [Deployment], cleanUp: Bool = true) throws {
        let array = aptl_ptr_array_new_objects()!
        defer { g_ptr_array_unref(array) }
        for d in deployments { aptl_ptr_array_add_ref(array, UnsafeMutableRawPointer(d.raw)) }
        var options = OstreeSysrootWriteDeploymentsOpts()
        options.do_postclean = cleanUp ? 1 : 0
        try ForkReaper.reaping {
            try gCheck("write deployments") { ostree_sysroot_write_deployments_with_options(raw, array, &options, nil, $0) }
        }
    }

    /// Pins or unpins a deployment (pinned deployments are never garbage collected).
    public func setPinned(_ deployment: Deployment, _ pinned: Bool) throws {
        try gCheck("pin deployment") { ostree_sysroot_deployment_set_pinned(raw, deployment.raw, pinned ? 1 : 0, $0) }
    }

    /// Deletes undeployed deployment directories and old boot versions and regenerates the
    /// deployment refs, without pruning the repository.
    public func prepareCleanup(cancellable: Cancellable? = nil) throws {
        try gCheck("clean up sysroot") { ostree_sysroot_prepare_cleanup(raw, cancellable?.raw, $0) }
    }

    /// Deletes undeployed deployment directories, old boot versions and unreferenced objects.
    public func cleanup(cancellable: Cancellable? = nil) throws {
        try ForkReaper.reaping { try gCheck("clean up sysroot") { ostree_sysroot_cleanup(raw, cancellable?.raw, $0) } }
    }
}
