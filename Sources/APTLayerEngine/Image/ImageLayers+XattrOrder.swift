import APTLayerModel
import Foundation

extension ImageLayers {
    /// Orders the extended attributes of every entry of the uncompressed tar at `path` so that the
    /// importer rebuilds them in OSTree's order, rewriting the PAX headers in place.
    ///
    /// OSTree keeps an entry's xattrs sorted by name, and the order is part of the object's
    /// checksum. GNU tar writes the `SCHILY.xattr.*` records in the order the checkout lists them
    /// (sorted, as OSTree wrote them), but a directory with both POSIX ACLs (systemd's
    /// `/var/log/journal` in every real base) came back from libostree's
    /// `ostree_repo_import_archive_to_mtree` (libarchive 3.6) with the two in reverse, as another
    /// object, and the image did not rebuild its commit. Written in reverse name order they arrive
    /// sorted; other xattrs were seen to arrive sorted either way (ImageTests checks both kinds).
    /// Only the records' order changes, so every length and offset stays.
    static func orderXattrsForImport(tar path: String) throws {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { throw FileTree.posixError("open \(path)") }
        defer { try? handle.close() }
        var offset: UInt64 = 0
        while true {
            try handle.seek(toOffset: offset)
            guard let header = try handle.read(upToCount: 512), header.count == 512 else { return }
            let bytes = [UInt8](header)
            if bytes.allSatisfy({ $0 == 0 }) { return }
            guard let size = octal(bytes[124..<136]) else {
                throw EngineError(.system, "\(path): a header at \(offset) is not tar's")
            }
            let body = offset + 512
            if bytes[156] == UInt8(ascii: "x"), size > 0 {
                try handle.seek(toOffset: body)
                guard let data = try handle.read(upToCount: Int(size)), data.count == Int(size) else {
                    throw EngineError(.system, "\(path): a PAX header at \(offset) is truncated")
                }
                let records = [UInt8](data)
                if let reordered = reversingXattrs(records), reordered != records {
                    try handle.seek(toOffset: body)
                    try handle.write(contentsOf: reordered)
                }
            }
            offset = body + (size + 511) / 512 * 512
        }
    }

    /// PAX records (`LEN key=value\n`, values may hold any byte) with the `SCHILY.xattr.*` ones
    /// in reverse order of their names, in the slots they had; nil when the records do not parse.
    static func reversingXattrs(_ data: [UInt8]) -> [UInt8]? {
        var records: [ArraySlice<UInt8>] = []
        var at = 0
        while at < data.count {
            guard let space = data[at...].firstIndex(of: 0x20), let length = Int(String(decoding: data[at..<space], as: UTF8.self)),
                length > space - at, at + length <= data.count
            else { return nil }
            records.append(data[at..<(at + length)])
            at += length
        }
        let prefix = Array("SCHILY.xattr.".utf8)
        func key(_ record: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            let start = record.firstIndex(of: 0x20)! + 1
            return record[start..<(record[start...].firstIndex(of: UInt8(ascii: "=")) ?? record.endIndex)]
        }
        let slots = records.indices.filter { key(records[$0]).starts(with: prefix) }
        guard slots.count > 1 else { return data }
        let xattrs = slots.map { records[$0] }.sorted { key($0).lexicographicallyPrecedes(key($1)) }.reversed()
        for (slot, record) in zip(slots, xattrs) { records[slot] = record }
        return records.flatMap { $0 }
    }

    private static func octal(_ field: ArraySlice<UInt8>) -> UInt64? {
        let digits = field.prefix { $0 != 0 && $0 != 0x20 }
        guard digits.allSatisfy({ (0x30...0x37).contains($0) }) else { return nil }
        return digits.reduce(0) { $0 * 8 + UInt64($1 - 0x30) }
    }
}
