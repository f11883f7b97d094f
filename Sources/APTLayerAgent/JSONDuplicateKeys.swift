import Foundation

/// Finds an object key that appears twice at the same level of a JSON document. JSON decoders
/// silently keep one of them; the agent refuses such a body instead, so what a client meant and
/// what was journaled cannot differ. Malformed JSON is left to the decoder.
enum JSONDuplicateKeys {
    /// The first duplicated key, if any.
    static func first(in bytes: some Collection<UInt8>) -> String? {
        var objects: [Set<String>?] = []  // one per open container; nil for arrays
        var expectingKey = false
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "{"):
                objects.append([])
                expectingKey = true
            case UInt8(ascii: "["):
                objects.append(nil)
                expectingKey = false
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !objects.isEmpty { objects.removeLast() }
                expectingKey = false
            case UInt8(ascii: ","):
                expectingKey = objects.last.map { $0 != nil } ?? false
            case UInt8(ascii: "\""):
                let start = index
                index = bytes.index(after: index)
                while index != bytes.endIndex && bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\") { index = bytes.index(after: index) }
                    if index != bytes.endIndex { index = bytes.index(after: index) }
                }
                guard index != bytes.endIndex else { return nil }
                if expectingKey, var keys = objects.last ?? nil {
                    let literal = Array(bytes[start...index])
                    let key = (try? JSONDecoder().decode(String.self, from: Data(literal))) ?? String(decoding: literal, as: UTF8.self)
                    if keys.contains(key) { return key }
                    keys.insert(key)
                    objects[objects.count - 1] = keys
                    expectingKey = false
                }
            default:
                break
            }
            index = bytes.index(after: index)
        }
        return nil
    }
}
