import COSTree
import Glibc

/// An error reported by libostree or GLib, carrying the `GError`'s domain, code and message.
public struct OSTreeError: Error, CustomStringConvertible, Sendable {
    /// The GLib error domain, e.g. `g-io-error-quark`.
    public let domain: String
    /// The code within ``domain``.
    public let code: Int32
    /// The human-readable message libostree gave.
    public let message: String
    /// What the wrapper was doing when the error happened.
    public let operation: String

    public var description: String { "\(operation): \(message)" }
}

/// Calls a GLib-style function that reports failure through a `GError**`, turning the error into a
/// Swift error and freeing it. A cancelled call becomes `CancellationError`.
@discardableResult
func gCall<T>(_ operation: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<GError>?>) -> T) throws -> T {
    var error: UnsafeMutablePointer<GError>?
    let result = body(&error)
    if let error {
        defer { g_error_free(error) }
        if aptl_error_is_cancelled(error) != 0 { throw CancellationError() }
        throw OSTreeError(
            domain: String(cString: g_quark_to_string(error.pointee.domain)),
            code: error.pointee.code,
            message: String(cString: error.pointee.message),
            operation: operation
        )
    }
    return result
}

/// Like ``gCall(_:_:)`` for functions returning `gboolean`: `FALSE` without an error still throws.
func gCheck(_ operation: String, _ body: (UnsafeMutablePointer<UnsafeMutablePointer<GError>?>) -> gboolean) throws {
    let ok = try gCall(operation, body)
    if ok == 0 {
        throw OSTreeError(domain: "apt-layer", code: 0, message: "failed without a reason", operation: operation)
    }
}

/// Takes ownership of a GLib-allocated C string (transfer full) and frees it.
func takeString(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    defer { g_free(pointer) }
    return String(cString: pointer)
}

/// Takes ownership of a NULL-terminated GLib string vector (transfer full) and frees it.
func takeStrv(_ strv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String]? {
    guard let strv else { return nil }
    defer { g_strfreev(strv) }
    var out: [String] = []
    var i = 0
    while let p = strv[i] {
        out.append(String(cString: p))
        i += 1
    }
    return out
}

/// Runs `body` with a NULL-terminated `char**` made from `strings`, valid only during the call.
func withStrv<R>(_ strings: [String], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws -> R) rethrows -> R {
    let duplicated = strings.map { strdup($0) }
    defer { duplicated.forEach { free($0) } }
    var vector: [UnsafeMutablePointer<CChar>?] = duplicated + [nil]
    return try vector.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
}

extension OSTreeError {
    /// A failed system call: `errno`'s text, in the POSIX domain.
    static func posix(_ operation: String) -> OSTreeError {
        let code = errno
        return OSTreeError(domain: "posix", code: code, message: String(cString: strerror(code)), operation: operation)
    }
}
