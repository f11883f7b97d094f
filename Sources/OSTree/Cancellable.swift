import COSTree

/// A `GCancellable` that can be cancelled from any thread.
///
/// Pass one to long libostree calls; ``cancel()`` makes them fail with `CancellationError`.
/// `@unchecked Sendable`: `g_cancellable_cancel` and `g_cancellable_is_cancelled` are documented as
/// thread-safe, and the pointer is owned for the object's whole life.
public final class Cancellable: @unchecked Sendable {
    let raw: UnsafeMutablePointer<GCancellable>

    /// Creates a new, uncancelled cancellable.
    public init() { raw = g_cancellable_new() }

    deinit { g_object_unref(raw) }

    /// Cancels every call that was given this cancellable.
    public func cancel() { g_cancellable_cancel(raw) }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { g_cancellable_is_cancelled(raw) != 0 }
}
