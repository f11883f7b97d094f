import COSTree
import Glibc

/// A loaded commit object: its parent, timestamp and `a{sv}` metadata.
///
/// `@unchecked Sendable`: GVariants are immutable and their refcounting is thread-safe.
public final class Commit: @unchecked Sendable {
    /// The commit's checksum.
    public let checksum: String
    let variant: OpaquePointer
    let metadata: OpaquePointer

    init(checksum: String, owning variant: OpaquePointer) {
        self.checksum = checksum
        self.variant = variant
        self.metadata = aptl_commit_metadata(variant)
    }

    deinit {
        g_variant_unref(metadata)
        g_variant_unref(variant)
    }

    /// The parent commit's checksum, if any.
    public var parent: String? { takeString(ostree_commit_get_parent(variant)) }

    /// The checksum of the commit's root tree (its root directory's contents and metadata): two
    /// commits with equal content checksums reach exactly the same objects.
    public var contentChecksum: String? { takeString(ostree_commit_get_content_checksum(variant)) }

    /// Seconds since the epoch.
    public var timestamp: UInt64 { UInt64(ostree_commit_get_timestamp(variant)) }

    /// The commit subject.
    public var subject: String {
        var s: UnsafePointer<CChar>?
        // The commit tuple is (a{sv} aya(say) s s t ay ay): child 3 is the subject.
        let child = g_variant_get_child_value(variant, 3)!
        defer { g_variant_unref(child) }
        s = g_variant_get_string(child, nil)
        return s.map { String(cString: $0) } ?? ""
    }

    /// A string metadata value.
    public func string(_ key: String) -> String? { takeString(aptl_lookup_string(metadata, key)) }

    /// A string-array metadata value.
    public func strings(_ key: String) -> [String]? { takeStrv(aptl_lookup_strv(metadata, key)) }

    /// A boolean metadata value.
    public func bool(_ key: String) -> Bool? {
        var found: gboolean = 0
        let value = aptl_lookup_bool(metadata, key, &found)
        return found != 0 ? value != 0 : nil
    }
}

/// Metadata to write into a new commit (`a{sv}` with strings, string arrays and booleans).
public struct CommitMetadata: Sendable {
    /// String values.
    public var strings: [String: String] = [:]
    /// String-array values.
    public var lists: [String: [String]] = [:]
    /// Boolean values.
    public var bools: [String: Bool] = [:]

    /// Creates empty metadata.
    public init() {}

    func makeVariant() -> OpaquePointer {
        let builder = aptl_vardict_new()!
        for (k, v) in strings.sorted(by: { $0.key < $1.key }) { aptl_vardict_add_string(builder, k, v) }
        for (k, v) in lists.sorted(by: { $0.key < $1.key }) {
            let dup = v.map { strdup($0) }
            defer { dup.forEach { free($0) } }
            var pointers: [UnsafePointer<CChar>?] = dup.map { UnsafePointer($0) }
            pointers.withUnsafeMutableBufferPointer { aptl_vardict_add_strv(builder, k, $0.baseAddress, gssize(v.count)) }
        }
        for (k, v) in bools.sorted(by: { $0.key < $1.key }) { aptl_vardict_add_bool(builder, k, v ? 1 : 0) }
        return aptl_vardict_end(builder)
    }
}
