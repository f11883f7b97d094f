/// Why a step of the fleet driver could not be done (a fetch, a FleetLock call, a transaction, the
/// configuration), in one line for the journal, the log and `GET /v1/policy`.
public struct DriverFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
