import Crypto
import Foundation

/// An OpenSSH detached signature (`ssh-keygen -Y sign`), as PROTOCOL.sshsig defines it. Only
/// ed25519 keys are supported.
public struct SSHSignature: Sendable, Equatable {
    /// The signer's public key blob (`string "ssh-ed25519" || string key`).
    public var publicKey: Data
    public var namespace: String
    /// The blob's reserved field (empty from ssh-keygen); part of the signed data.
    public var reserved: Data
    public var hashAlgorithm: String
    /// The raw ed25519 signature (64 bytes).
    public var signature: Data

    /// The ed25519 key (32 bytes) inside ``publicKey``.
    public var ed25519Key: Data? {
        var reader = SSHReader(publicKey)
        guard let type = reader.string(), String(decoding: type, as: UTF8.self) == "ssh-ed25519", let key = reader.string(), key.count == 32,
            reader.atEnd
        else { return nil }
        return key
    }

    /// Every `-----BEGIN SSH SIGNATURE-----` block in `armored` (signers' files concatenated).
    public static func parseAll(_ armored: String) throws -> [SSHSignature] {
        var result: [SSHSignature] = []
        var body: String?
        for line in armored.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line == "-----BEGIN SSH SIGNATURE-----" {
                body = ""
            } else if line == "-----END SSH SIGNATURE-----", let text = body {
                guard let blob = Data(base64Encoded: text) else { throw PolicyError.signature("a signature block is not base64") }
                result.append(try parse(blob: blob))
                body = nil
            } else if body != nil {
                body! += line
            }
        }
        guard !result.isEmpty else { throw PolicyError.signature("no SSH signature found") }
        return result
    }

    /// One binary SSHSIG blob.
    public static func parse(blob: Data) throws -> SSHSignature {
        var reader = SSHReader(blob)
        guard reader.bytes(6) == Data("SSHSIG".utf8), reader.uint32() == 1, let publicKey = reader.string(), let namespace = reader.string(),
            let reserved = reader.string(), let hash = reader.string(), let wrapped = reader.string(), reader.atEnd
        else { throw PolicyError.signature("malformed SSH signature") }
        var inner = SSHReader(wrapped)
        guard let type = inner.string(), String(decoding: type, as: UTF8.self) == "ssh-ed25519", let raw = inner.string(), raw.count == 64,
            inner.atEnd
        else { throw PolicyError.signature("unsupported signature type (only ssh-ed25519)") }
        return SSHSignature(
            publicKey: publicKey, namespace: String(decoding: namespace, as: UTF8.self), reserved: reserved,
            hashAlgorithm: String(decoding: hash, as: UTF8.self),
            signature: raw)
    }

    /// Whether this signature signs `message` in `namespace` (the bytes ssh-keygen signed:
    /// `"SSHSIG" || string namespace || string reserved || string hash || string H(message)`).
    public func verifies(_ message: Data, namespace expected: String) -> Bool {
        guard namespace == expected, let key = ed25519Key, let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else {
            return false
        }
        let digest: Data
        switch hashAlgorithm {
        case "sha512": digest = Data(SHA512.hash(data: message))
        case "sha256": digest = Data(SHA256.hash(data: message))
        default: return false
        }
        var signed = Data("SSHSIG".utf8)
        SSHReader.appendString(&signed, Data(namespace.utf8))
        SSHReader.appendString(&signed, reserved)
        SSHReader.appendString(&signed, Data(hashAlgorithm.utf8))
        SSHReader.appendString(&signed, digest)
        return publicKey.isValidSignature(signature, for: signed)
    }
}

/// Reads SSH wire encoding (RFC 4251): uint32 big-endian, string = uint32 length + bytes.
struct SSHReader {
    private let data: Data
    private var offset: Int

    init(_ data: Data) {
        self.data = Data(data)
        offset = 0
    }

    var atEnd: Bool { offset == data.count }

    mutating func bytes(_ n: Int) -> Data? {
        guard n >= 0, offset + n <= data.count else { return nil }
        defer { offset += n }
        return data.subdata(in: offset..<(offset + n))
    }

    mutating func uint32() -> UInt32? {
        guard let b = bytes(4) else { return nil }
        return b.reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func string() -> Data? {
        guard let n = uint32(), n <= 1 << 20 else { return nil }
        return bytes(Int(n))
    }

    static func appendString(_ out: inout Data, _ value: Data) {
        let n = UInt32(value.count)
        out.append(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)])
        out.append(value)
    }
}
