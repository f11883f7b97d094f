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
        let archive: TarArchive
        do { archive = try TarArchive(path: path) } catch { throw EngineError(.system, "read layer \(path): \(error)") }
        guard let handle = FileHandle(forUpdatingAtPath: path) else { throw FileTree.posixError("open \(path)") }
        defer { try? handle.close() }
        for header in archive.extendedHeaders where header.size > 0 {
            try handle.seek(toOffset: header.offset)
            guard let data = try handle.read(upToCount: Int(header.size)), data.count == Int(header.size) else {
                throw EngineError(.system, "\(path): a PAX header at \(header.offset) is truncated")
            }
            let records = [UInt8](data)
            if let reordered = reversingXattrs(records), reordered != records {
                try handle.seek(toOffset: header.offset)
                try handle.write(contentsOf: reordered)
            }
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
}
