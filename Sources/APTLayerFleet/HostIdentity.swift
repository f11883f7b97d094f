import Crypto
import Foundation

/// A host's identity in the fleet, derived from its machine-id so that the machine-id itself never
/// leaves the host, and its bucket: the pinned algorithm of docs/fleet.md, recomputable by anyone.
public enum HostIdentity {
    /// Why a machine-id cannot be used.
    public struct InvalidMachineID: Error, CustomStringConvertible {
        public let value: String
        public var description: String { "machine-id must be 32 lowercase hex characters, got \(value.debugDescription)" }
    }

    /// `host-id` = lowercase hex of HMAC-SHA256(key: the machine-id as its 32 ASCII hex characters,
    /// message: `apt-layer/host-id/v1`), first 32 characters.
    public static func hostID(machineID: String) throws -> String {
        let id = machineID.trimmingCharacters(in: .whitespacesAndNewlines)
        guard id.utf8.count == 32, id.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw InvalidMachineID(value: id)
        }
        let mac = HMAC<SHA256>.authenticationCode(for: Data("apt-layer/host-id/v1".utf8), using: SymmetricKey(data: Data(id.utf8)))
        return String(hex(Data(mac)).prefix(32))
    }

    /// The host-id of this machine, from `/etc/machine-id` (or `path`).
    public static func hostID(machineIDFile path: String = "/etc/machine-id") throws -> String {
        try hostID(machineID: try String(contentsOfFile: path, encoding: .utf8))
    }

    /// `bucket` = big-endian uint64 of the first 8 bytes of
    /// SHA-256(`apt-layer/bucket/v1` ‖ 0x00 ‖ fleet ‖ 0x00 ‖ salt ‖ 0x00 ‖ host-id) mod 10000.
    public static func bucket(fleet: String, salt: String, hostID: String) -> Int {
        var input = Data("apt-layer/bucket/v1".utf8)
        for part in [fleet, salt, hostID] {
            input.append(0)
            input.append(contentsOf: Data(part.utf8))
        }
        let digest = Array(SHA256.hash(data: input))
        let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(value % 10000)
    }

    static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }
}
