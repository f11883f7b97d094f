/// The outcome of a mutating operation.
public struct ChangeResult: Sendable, Codable, Equatable {
    /// False when the inputs were unchanged and nothing was written (CLI exit code 77).
    public var changed: Bool
    /// One line for the user.
    public var summary: String
    /// Package changes of the new (or planned) deployment against its base or the previous one.
    public var diff: PackageDiff?
    /// The checksum of the commit that was deployed, when one was.
    public var checksum: String?

    /// Creates a result.
    public init(changed: Bool, summary: String, diff: PackageDiff? = nil, checksum: String? = nil) {
        self.changed = changed
        self.summary = summary
        self.diff = diff
        self.checksum = checksum
    }
}
