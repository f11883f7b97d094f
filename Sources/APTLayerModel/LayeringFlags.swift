/// What `install`-like verbs may tolerate.
public struct LayeringFlags: Sendable, Equatable, Hashable {
    /// Tolerate already-requested or absent names.
    public var idempotent = false
    /// Print what would change; build nothing.
    public var dryRun = false
    /// Permit linux-image-* and bootloader packages.
    public var allowKernel = false
    /// Stage with finalization locked (booted hosts only).
    public var lockFinalization = false
    /// Update package lists even when they are fresh.
    public var refresh = false
    /// Apply the new deployment to the running system too (`install --apply-live`); install only.
    public var live: LiveOptions?

    /// Creates flags.
    public init(
        idempotent: Bool = false, dryRun: Bool = false, allowKernel: Bool = false, lockFinalization: Bool = false, refresh: Bool = false,
        live: LiveOptions? = nil
    ) {
        self.refresh = refresh
        self.live = live
        self.idempotent = idempotent
        self.dryRun = dryRun
        self.allowKernel = allowKernel
        self.lockFinalization = lockFinalization
    }
}
