import COSTree
import Glibc

/// A GLib key file (the format of an OSTree deployment's origin file).
///
/// `@unchecked Sendable`: a key file is only used by one thread at a time (the engine's transaction
/// thread); it is never shared while being mutated.
public final class KeyFile: @unchecked Sendable {
    let raw: OpaquePointer

    /// Creates an empty key file.
    public init() { raw = g_key_file_new() }

    /// Parses key file text.
    public convenience init(data: String) throws {
        self.init()
        try gCheck("parse key file") { g_key_file_load_from_data(raw, data, gsize(data.utf8.count), G_KEY_FILE_KEEP_COMMENTS, $0) }
    }

    /// Wraps a key file that the caller holds a reference to (transfer none): it is ref'd here.
    init(borrowing pointer: OpaquePointer) {
        raw = g_key_file_ref(pointer)
    }

    deinit { g_key_file_unref(raw) }

    /// The string at `group`/`key`, or nil.
    public func string(_ group: String, _ key: String) -> String? {
        takeString(g_key_file_get_string(raw, group, key, nil))
    }

    /// The `;`-separated list at `group`/`key`, or an empty list.
    public func stringList(_ group: String, _ key: String) -> [String] {
        guard let list = g_key_file_get_string_list(raw, group, key, nil, nil) else { return [] }
        return takeStrv(list) ?? []
    }

    /// Sets a string value.
    public func set(_ group: String, _ key: String, _ value: String) {
        g_key_file_set_string(raw, group, key, value)
    }

    /// Sets a list value; an empty list removes the key.
    public func set(_ group: String, _ key: String, list: [String]) {
        if list.isEmpty {
            g_key_file_remove_key(raw, group, key, nil)
            return
        }
        let dup = list.map { strdup($0) }
        defer { dup.forEach { free($0) } }
        var pointers: [UnsafePointer<CChar>?] = dup.map { UnsafePointer($0) }
        pointers.withUnsafeMutableBufferPointer { g_key_file_set_string_list(raw, group, key, $0.baseAddress, gsize(list.count)) }
    }

    /// The serialised text.
    public var data: String { takeString(g_key_file_to_data(raw, nil, nil)) ?? "" }
}
