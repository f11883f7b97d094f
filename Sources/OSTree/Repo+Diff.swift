import COSTree
import Glibc

/// One entry that differs between two commits' trees (libostree's `ostree_diff_dirs`).
public struct TreeChange: Sendable, Equatable, Hashable {
    /// How the entry changed.
    public enum Kind: Character, Sendable {
        /// Only in the newer tree (directories are listed with everything under them).
        case added = "A"
        /// In both, with other content or metadata.
        case modified = "M"
        /// Only in the older tree (a directory is listed alone).
        case removed = "D"
        /// In both, as different file types (a file that became a directory, …).
        case typeChanged = "T"
    }

    /// What the entry is in the newer tree (``FileType/other`` for removed entries).
    public enum FileType: Character, Sendable {
        case regular = "f"
        case directory = "d"
        case symlink = "l"
        case other = "o"
    }

    public var kind: Kind
    public var type: FileType
    /// Bytes of a regular file in the newer tree; 0 otherwise.
    public var size: UInt64
    /// Absolute path in the commit, `/usr/bin/x`.
    public var path: String

    /// Creates a change.
    public init(kind: Kind, type: FileType, size: UInt64, path: String) {
        self.kind = kind
        self.type = type
        self.size = size
        self.path = path
    }
}

extension Repo {
    /// The entries under `subpath` (`/usr`) that differ from commit `from` to commit `to`.
    public func diff(from: String, to: String, subpath: String) throws -> [TreeChange] {
        var text: UnsafeMutablePointer<CChar>?
        try gCheck("diff \(from.prefix(12)) → \(to.prefix(12))") {
            text = aptl_diff_commits(raw, from, to, subpath, nil, $0)
            return text == nil ? 0 : 1
        }
        return (takeString(text) ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4, let k = fields[0].first.flatMap(TreeChange.Kind.init(rawValue:)),
                let t = fields[1].first.flatMap(TreeChange.FileType.init(rawValue:)), let size = UInt64(fields[2])
            else { return nil }
            return TreeChange(kind: k, type: t, size: size, path: String(fields[3]))
        }
    }

    /// Copies `subpath` of `rev` (a file, a symlink or a directory tree) to `path`, replacing files
    /// there and merging directories; never hardlinks into the repository.
    public func checkoutCopy(_ rev: String, subpath: String, to path: String) throws {
        try gCheck("check out \(subpath) of \(rev.prefix(12))") { aptl_checkout_copy(raw, rev, subpath, path, nil, $0) }
    }
}
