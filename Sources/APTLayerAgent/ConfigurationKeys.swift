import Foundation

/// Finds the keys of a configuration that its types never read: a typo (`polcy-url`) or a key in
/// the wrong section would otherwise be ignored silently, while the API refuses unknown keys.
///
/// The value is decoded a second time, by ``KeyRecordingDecoder``, which notes for every mapping
/// the keys present and the keys the types asked for (`decode`, `decodeIfPresent`, `contains`).
/// Nothing is listed by hand: a new key in any `Codable` configuration type is known as soon as its
/// `init(from:)` reads it. A mapping read through `allKeys` (`roles`, a `[String: Role]`) takes any key.
enum ConfigurationKeys {
    /// A key no type read, with the keys its mapping does take.
    struct Unknown: Equatable {
        /// Where it is: the mapping keys and list indexes above it, then the key.
        var path: [String]
        /// The keys that mapping takes.
        var known: Set<String>

        /// The known key nearest to the unknown one (at most a third of its letters differ).
        var suggestion: String? {
            guard let key = path.last else { return nil }
            let scored = known.map { ($0, ConfigurationKeys.distance(key, $0)) }.filter { $0.1 <= max(1, key.count / 3) }
            return scored.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }?.0
        }
    }

    /// The unknown keys of `value` (parsed JSON: dictionaries, arrays, strings, numbers, null) for
    /// `type`, in path order.
    static func unknown<T: Decodable>(in value: Any, for type: T.Type) -> [Unknown] {
        let recorder = KeyRecordingDecoder.Recorder()
        _ = try? T(from: KeyRecordingDecoder(value: value, path: [], recorder: recorder))
        var found: [Unknown] = []
        for (path, present) in recorder.present where !recorder.open.contains(path) {
            let asked = recorder.asked[path] ?? []
            for key in present.subtracting(asked) { found.append(Unknown(path: path + [key], known: asked)) }
        }
        return found.sorted { $0.path.lexicographicallyPrecedes($1.path) }
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

/// A `Decoder` over parsed JSON that records which keys each mapping's type asks for (see
/// ``ConfigurationKeys``). Scalars convert leniently: the strict decode has already passed.
struct KeyRecordingDecoder: Decoder {
    /// What was seen, by mapping path.
    final class Recorder {
        var present: [[String]: Set<String>] = [:]
        var asked: [[String]: Set<String>] = [:]
        /// Mappings read through `allKeys`: any key is theirs.
        var open: Set<[String]> = []
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) {
            stringValue = String(intValue)
            self.intValue = intValue
        }
    }

    let value: Any
    let path: [String]
    let recorder: Recorder
    var codingPath: [any CodingKey] { path.map { Key(stringValue: $0) } }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ type: Any.Type) -> DecodingError {
        .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "not a \(type)"))
    }

    func container<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> {
        guard let mapping = value as? [String: Any] else { throw mismatch([String: Any].self) }
        recorder.present[path, default: []].formUnion(mapping.keys)
        return KeyedDecodingContainer(Keyed<K>(decoder: self, mapping: mapping))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard let items = value as? [Any] else { throw mismatch([Any].self) }
        return Unkeyed(decoder: self, items: items)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(decoder: self) }

    struct Keyed<K: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: KeyRecordingDecoder
        let mapping: [String: Any]
        var codingPath: [any CodingKey] { decoder.codingPath }
        var allKeys: [K] {
            decoder.recorder.open.insert(decoder.path)
            return mapping.keys.compactMap { K(stringValue: $0) }
        }

        func note(_ key: K) -> Any? {
            decoder.recorder.asked[decoder.path, default: []].insert(key.stringValue)
            return mapping[key.stringValue]
        }

        func child(_ key: K) throws -> KeyRecordingDecoder {
            guard let value = note(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing"))
            }
            return KeyRecordingDecoder(value: value, path: decoder.path + [key.stringValue], recorder: decoder.recorder)
        }

        func contains(_ key: K) -> Bool { note(key) != nil }
        func decodeNil(forKey key: K) throws -> Bool { note(key).map { $0 is NSNull } ?? true }
        func decode<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T { try T(from: child(key)) }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: K) throws -> KeyedDecodingContainer<N> {
            try child(key).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: K) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
        func superDecoder() throws -> any Decoder { decoder }
        func superDecoder(forKey key: K) throws -> any Decoder { try child(key) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let decoder: KeyRecordingDecoder
        let items: [Any]
        var currentIndex = 0
        var codingPath: [any CodingKey] { decoder.codingPath }
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        mutating func next() throws -> KeyRecordingDecoder {
            guard !isAtEnd else { throw decoder.mismatch(Any.self) }
            defer { currentIndex += 1 }
            return KeyRecordingDecoder(value: items[currentIndex], path: decoder.path + [String(currentIndex)], recorder: decoder.recorder)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] is NSNull else { return false }
            currentIndex += 1
            return true
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: next()) }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
            try next().container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next() }
    }

    struct Single: SingleValueDecodingContainer {
        let decoder: KeyRecordingDecoder
        var codingPath: [any CodingKey] { decoder.codingPath }

        func decodeNil() -> Bool { decoder.value is NSNull }
        func number() throws -> NSNumber {
            guard let number = decoder.value as? NSNumber else { throw decoder.mismatch(NSNumber.self) }
            return number
        }
        func decode(_ type: Bool.Type) throws -> Bool { try number().boolValue }
        func decode(_ type: String.Type) throws -> String {
            guard let string = decoder.value as? String else { throw decoder.mismatch(String.self) }
            return string
        }
        func decode(_ type: Double.Type) throws -> Double { try number().doubleValue }
        func decode(_ type: Float.Type) throws -> Float { try number().floatValue }
        func decode(_ type: Int.Type) throws -> Int { try number().intValue }
        func decode(_ type: Int8.Type) throws -> Int8 { try number().int8Value }
        func decode(_ type: Int16.Type) throws -> Int16 { try number().int16Value }
        func decode(_ type: Int32.Type) throws -> Int32 { try number().int32Value }
        func decode(_ type: Int64.Type) throws -> Int64 { try number().int64Value }
        func decode(_ type: UInt.Type) throws -> UInt { try number().uintValue }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try number().uint8Value }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try number().uint16Value }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try number().uint32Value }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try number().uint64Value }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: decoder) }
    }
}
