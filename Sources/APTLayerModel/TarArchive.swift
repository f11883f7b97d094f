import Foundation

/// The members of a tar archive (ustar, PAX or GNU long names), found by walking the headers with
/// seeks: nothing but 512-byte headers (and long-name records) is read until a member is asked
/// for. An offline bundle (an OCI archive of hundreds of megabytes) is indexed in a few reads, and
/// a member is read or copied straight from its offset.
public struct TarArchive: Sendable {
    /// Where a member's bytes lie in the archive.
    public struct Member: Sendable, Equatable {
        /// The offset of the first byte of its content.
        public let offset: UInt64
        /// Its content's length.
        public let size: UInt64
        /// Its tar type flag (`0` or NUL for a regular file).
        public let type: UInt8

        /// Whether the member is a regular file.
        public var isFile: Bool { type == UInt8(ascii: "0") || type == 0 }
    }

    /// Why an archive or a member could not be read.
    public struct ReadError: Error, CustomStringConvertible, Equatable {
        /// One line naming the archive and what is wrong.
        public let description: String
    }

    /// The archive's path.
    public let path: String
    /// Members by name (`./` dropped; the last of two with one name wins, as tar extracts).
    public let members: [String: Member]
    /// The PAX extended headers (type `x`: the records of the entry that follows), in order.
    public let extendedHeaders: [Member]

    /// Indexes the archive at `path`; stops early once every name in `until` is found.
    public init(path: String, until: Set<String> = []) throws(ReadError) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ReadError(description: "cannot open \(path)") }
        defer { try? handle.close() }
        var members: [String: Member] = [:]
        var extendedHeaders: [Member] = []
        var offset: UInt64 = 0
        var longName: String?
        while until.isEmpty || !until.isSubset(of: members.keys) {
            guard (try? handle.seek(toOffset: offset)) != nil, let header = try? handle.read(upToCount: 512), header.count == 512 else { break }
            let bytes = [UInt8](header)
            if bytes.allSatisfy({ $0 == 0 }) { break }
            guard let size = Self.octal(bytes[124..<136]) else { throw ReadError(description: "\(path) is not a tar archive") }
            let type = bytes[156]
            let body = offset + 512
            var name = longName ?? Self.text(bytes[345..<500]).map { $0.isEmpty ? "" : $0 + "/" }.map { $0 + (Self.text(bytes[0..<100]) ?? "") } ?? ""
            longName = nil
            if name.hasPrefix("./") { name.removeFirst(2) }
            if type == UInt8(ascii: "x") { extendedHeaders.append(Member(offset: body, size: size, type: type)) }
            if type == UInt8(ascii: "x") || type == UInt8(ascii: "L") {
                // A PAX or GNU long-name header: the next entry's name may be in it.
                if size <= 65536, (try? handle.seek(toOffset: body)) != nil, let data = try? handle.read(upToCount: Int(size)) {
                    longName = type == UInt8(ascii: "L") ? String(decoding: data.prefix { $0 != 0 }, as: UTF8.self) : Self.paxPath(data)
                }
            } else if type != UInt8(ascii: "g") {
                members[name] = Member(offset: body, size: size, type: type)
            }
            offset = body + (size + 511) / 512 * 512
        }
        self.path = path
        self.members = members
        self.extendedHeaders = extendedHeaders
    }

    /// The content of the regular file `name`, refused when it is larger than `limit` bytes or the
    /// archive ends inside it.
    public func read(_ name: String, limit: Int) throws(ReadError) -> Data {
        let member = try file(name)
        guard member.size <= UInt64(limit) else { throw ReadError(description: "\(path): \(name) is larger than \(limit) bytes") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ReadError(description: "cannot open \(path)") }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: member.offset)) != nil, let data = try? handle.read(upToCount: Int(member.size)),
            data.count == Int(member.size)
        else { throw ReadError(description: "\(path): \(name) is truncated") }
        return data
    }

    /// Copies the regular file `name` to `destination` (created, mode 0644) in 1 MiB pieces.
    public func copy(_ name: String, to destination: String) throws(ReadError) {
        let member = try file(name)
        guard let source = FileHandle(forReadingAtPath: path) else { throw ReadError(description: "cannot open \(path)") }
        defer { try? source.close() }
        let fd = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ReadError(description: "cannot create \(destination): \(String(cString: strerror(errno)))") }
        let sink = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var left = member.size
        guard (try? source.seek(toOffset: member.offset)) != nil else { throw ReadError(description: "\(path): cannot seek to \(name)") }
        while left > 0 {
            guard let piece = try? source.read(upToCount: Int(min(left, 1 << 20))), !piece.isEmpty else {
                throw ReadError(description: "\(path): \(name) is truncated")
            }
            do { try sink.write(contentsOf: piece) } catch {
                throw ReadError(description: "cannot write \(destination): \(error.localizedDescription)")
            }
            left -= UInt64(piece.count)
        }
        do { try sink.synchronize() } catch { throw ReadError(description: "cannot write \(destination): \(error.localizedDescription)") }
    }

    private func file(_ name: String) throws(ReadError) -> Member {
        guard let member = members[name] else { throw ReadError(description: "\(path) has no \(name)") }
        guard member.isFile else { throw ReadError(description: "\(path): \(name) is not a regular file") }
        return member
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> UInt64? {
        let digits = field.drop { $0 == 0x20 }.prefix { $0 != 0 && $0 != 0x20 }
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
