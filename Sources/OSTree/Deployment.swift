import COSTree

/// One OSTree deployment (a checked-out commit that can be booted).
///
/// `@unchecked Sendable`: deployments are immutable value objects in libostree once loaded.
public final class Deployment: @unchecked Sendable {
    let raw: OpaquePointer

    /// Takes a new reference to `raw` (transfer none in the source).
    init(borrowing raw: OpaquePointer) {
        self.raw = raw
        g_object_ref(UnsafeMutableRawPointer(raw))
    }

    /// Takes ownership of `raw` (transfer full in the source).
    init(owning raw: OpaquePointer) { self.raw = raw }

    deinit { g_object_unref(UnsafeMutableRawPointer(raw)) }

    /// The stateroot (OS name).
    public var osname: String { String(cString: ostree_deployment_get_osname(raw)) }
    /// The deployed commit.
    public var checksum: String { String(cString: ostree_deployment_get_csum(raw)) }
    /// The serial that tells apart two deployments of one commit.
    public var serial: Int32 { ostree_deployment_get_deployserial(raw) }
    /// Position in the sysroot's deployment list.
    public var index: Int32 { ostree_deployment_get_index(raw) }
    /// Whether cleanup must keep it.
    public var isPinned: Bool { ostree_deployment_is_pinned(raw) != 0 }
    /// Whether it is staged (written at shutdown).
    public var isStaged: Bool { ostree_deployment_is_staged(raw) != 0 }
    /// The origin key file, if any.
    public var origin: KeyFile? { ostree_deployment_get_origin(raw).map { KeyFile(borrowing: $0) } }
    /// The kernel command line from the boot entry.
    public var kernelArguments: String { takeString(aptl_deployment_kargs(raw)) ?? "" }
    /// The kernel command line when the deployment carries one; nil for a deployment staged
    /// without explicit arguments, which finalization gives its merge deployment's.
    public var explicitKernelArguments: String? { takeString(aptl_deployment_kargs_or_null(raw)) }

    /// How `/usr` of the booted deployment is unlocked (`ostree admin unlock`), as libostree read it
    /// from its run-state flags at load.
    public var unlockState: UnlockState {
        switch ostree_deployment_get_unlocked(raw) {
        case OSTREE_DEPLOYMENT_UNLOCKED_DEVELOPMENT: .development
        case OSTREE_DEPLOYMENT_UNLOCKED_HOTFIX: .hotfix
        case OSTREE_DEPLOYMENT_UNLOCKED_TRANSIENT: .transient
        default: .none
        }
    }

    /// libostree's unlock states of a deployment.
    public enum UnlockState: String, Sendable {
        case none, development, hotfix, transient
    }

    /// Whether two handles denote the same deployment.
    public func isSame(as other: Deployment) -> Bool {
        ostree_deployment_equal(UnsafeRawPointer(raw), UnsafeRawPointer(other.raw)) != 0
    }
}
