import Foundation

/// Finds an object member whose value is `null`. No request schema in openapi.yaml is nullable, but
/// the generated decoder reads `"ref": null` as an absent key; the agent refuses such a body
/// instead, so a schema-violating request is never accepted (schemathesis found `{"arguments":
/// {"ref": null}}` accepted for `cleanup`). Malformed JSON is left to the decoder.
enum JSONNullMembers {
    /// The path of the first member whose value is null (`arguments.ref`), if any.
    static func first(in bytes: some Collection<UInt8>) -> String? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else { return nil }
        return find(root, path: [])
    }

    private static func find(_ value: Any, path: [String]) -> String? {
        if let object = value as? [String: Any] {
            for key in object.keys.sorted() {
                let member = object[key]!
                if member is NSNull { return (path + [key]).joined(separator: ".") }
                if let found = find(member, path: path + [key]) { return found }
            }
        } else if let array = value as? [Any] {
            for (index, element) in array.enumerated() {
                if let found = find(element, path: path + ["\(index)"]) { return found }
            }
        }
        return nil
    }
}
