import Foundation

/// An offline bundle (docs/images.md): one file that is an OCI archive (a tar of an OCI image
/// layout holding the images the policy's releases pin, each under its digest's hex as the name)
/// with the signed policy and its detached signature beside the layout, at ``policyPath`` and
/// ``signaturePath``. `apt-layer bundle create` writes it; the agent reads the policy with this
/// type and hands the archive to the engine (`ostree-unverified-image:oci-archive:FILE:NAME@sha256:…`).
public enum PolicyBundle {
    /// Where the policy lies in the bundle.
    public static let policyPath = "apt-layer/policy.yaml"
    /// Where its detached signature lies.
    public static let signaturePath = "apt-layer/policy.yaml.sig"
    /// The file name ending the agent picks up in a bundle directory.
    public static let suffix = ".bundle"

    /// Why a bundle could not be read.
    public struct ReadError: Error, CustomStringConvertible, Equatable {
        /// One line naming the bundle and what is wrong with it.
        public let description: String
    }

    /// Reads the policy and signature out of a bundle without reading the images: the tar headers
    /// are walked with seeks. Refuses a file that is not a tar or lacks either member.
    public static func read(_ path: String) throws(ReadError) -> (policy: Data, signature: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ReadError(description: "cannot open bundle \(path)") }
        defer { try? handle.close() }
        var found: [String: Data] = [:]
        var offset: UInt64 = 0
        var longName: String?
        while found.count < 2 {
            guard (try? handle.seek(toOffset: offset)) != nil, let header = try? handle.read(upToCount: 512), header.count == 512 else { break }
            let bytes = [UInt8](header)
            if bytes.allSatisfy({ $0 == 0 }) { break }
            guard let size = octal(bytes[124..<136]) else { throw ReadError(description: "\(path) is not a bundle (not a tar archive)") }
            let type = bytes[156]
            let body = offset + 512
            var name = longName ?? text(bytes[345..<500]).map { $0.isEmpty ? "" : $0 + "/" }.map { $0 + (text(bytes[0..<100]) ?? "") } ?? ""
            longName = nil
            if name.hasPrefix("./") { name.removeFirst(2) }
            if type == UInt8(ascii: "x") || type == UInt8(ascii: "L") {
                // A PAX or GNU long-name header: the next entry's name may be in it.
                if size <= 65536, (try? handle.seek(toOffset: body)) != nil, let data = try? handle.read(upToCount: Int(size)) {
                    longName = type == UInt8(ascii: "L") ? String(decoding: data.prefix { $0 != 0 }, as: UTF8.self) : paxPath(data)
                }
            } else if name == policyPath || name == signaturePath {
                guard size <= 1 << 20, (try? handle.seek(toOffset: body)) != nil, let data = try? handle.read(upToCount: Int(size)),
                    data.count == size
                else { throw ReadError(description: "\(path): \(name) is truncated or too large") }
                found[name] = data
            }
            offset = body + (size + 511) / 512 * 512
        }
        guard let policy = found[policyPath], let signature = found[signaturePath] else {
            throw ReadError(description: "\(path) is not an apt-layer bundle: no \(policyPath) and \(signaturePath)")
        }
        return (policy, String(decoding: signature, as: UTF8.self))
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> UInt64? {
        let digits = field.prefix { $0 != 0 && $0 != 0x20 }.drop { $0 == 0x20 }
        guard !digits.isEmpty, digits.allSatisfy({ (0x30...0x37).contains($0) }) else { return digits.isEmpty ? 0 : nil }
        return digits.reduce(0) { $0 * 8 + UInt64($1 - 0x30) }
    }

    private static func text(_ field: ArraySlice<UInt8>) -> String? { String(bytes: field.prefix { $0 != 0 }, encoding: .utf8) }

    private static func paxPath(_ data: Data) -> String? {
        // Records are "LEN key=value\n".
        for record in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let space = record.firstIndex(of: " ") else { continue }
            let pair = record[record.index(after: space)...]
            if pair.hasPrefix("path=") { return String(pair.dropFirst(5)) }
        }
        return nil
    }
}
