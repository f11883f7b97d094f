import APTLayerModel

/// Receives progress from a long engine operation.
public protocol ProgressSink: Sendable {
    /// A new phase began (e.g. "Resolving packages").
    func phase(_ name: String)
    /// Package work advanced: `done` of `total`, currently `item`.
    func packages(done: Int, total: Int, item: String)
    /// A line worth showing the user (warnings, notes).
    func message(_ text: String)
    /// The layered commit about to be deployed: called before the deployment is written, so a
    /// journal can record the outcome before it happens and reconcile after a crash. Throwing
    /// stops the change before anything is written: a change whose outcome cannot be recorded
    /// is not made.
    func willDeploy(_ checksum: String) throws
}

extension ProgressSink {
    public func willDeploy(_ checksum: String) throws {}
}

/// Discards all progress.
public struct SilentProgress: ProgressSink {
    /// Creates a sink that drops everything.
    public init() {}
    public func phase(_ name: String) {}
    public func packages(done: Int, total: Int, item: String) {}
    public func message(_ text: String) {}
}
