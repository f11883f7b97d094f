import COSTree
import Glibc

/// SHA-256 digests through GLib's `GChecksum`.
public enum SHA256 {
    /// The lowercase hex SHA-256 of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let checksum = g_checksum_new(G_CHECKSUM_SHA256)!
        defer { g_checksum_free(checksum) }
        bytes.withUnsafeBufferPointer { g_checksum_update(checksum, $0.baseAddress, gssize($0.count)) }
        return String(cString: g_checksum_get_string(checksum))
    }

    /// The lowercase hex SHA-256 of a string's UTF-8 bytes.
    public static func hex(_ string: String) -> String { hex(Array(string.utf8)) }

    /// The lowercase hex SHA-256 of a file's contents, read in chunks.
    public static func hex(fileAt path: String) throws -> String {
        guard let file = fopen(path, "rb") else {
            throw OSTreeError(domain: "errno", code: errno, message: String(cString: strerror(errno)), operation: "open \(path)")
        }
        defer { fclose(file) }
        let checksum = g_checksum_new(G_CHECKSUM_SHA256)!
        defer { g_checksum_free(checksum) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n > 0 { buffer.withUnsafeBufferPointer { g_checksum_update(checksum, $0.baseAddress, gssize(n)) } }
            if n < buffer.count {
                if ferror(file) != 0 {
                    throw OSTreeError(domain: "errno", code: EIO, message: "read error", operation: "read \(path)")
                }
                break
            }
        }
        return String(cString: g_checksum_get_string(checksum))
    }
}
