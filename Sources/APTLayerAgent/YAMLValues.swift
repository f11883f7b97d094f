import Foundation
import Yams

/// agent.yaml and its drop-ins as plain values (`[String: Any]`, `[Any]`, `String`, `Int`,
/// `Double`, `Bool`, `NSNull`), with YAML 1.1's implicit types resolved here rather than by Yams'
/// default resolver. That resolver compiles its rules as `NSRegularExpression`s, that is with ICU's
/// regular-expression engine: the larger part of what the agent ran of ICU before READY. The same
/// rules, written out: `YAMLValuesTests` checks them against Yams' resolver for every kind.
/// Differences: a timestamp stays a string (Yams made a `Date`, which the configuration's JSON
/// step refused); mapping keys are always strings; `!!str` on a plain scalar is not seen (see
/// ``scalar(_:)``).
enum YAMLValues {
    /// The document's value; nil for an empty document.
    static func load(_ text: String) throws -> Any? {
        guard let node = try Yams.compose(yaml: text, .basic) else { return nil }
        return value(node)
    }

    static func value(_ node: Node) -> Any {
        switch node {
        case .scalar(let scalar): return self.scalar(scalar)
        case .sequence(let sequence): return sequence.map(value)
        case .mapping(let mapping):
            // As Yams' `flatten`: the `<<` merges' pairs first (each source merged itself; of a
            // sequence of sources the earlier wins), then the mapping's own; the last pair wins.
            var merged: [(String, Any)] = []
            var own: [(String, Any)] = []
            for (key, item) in mapping {
                guard key.scalar.map({ $0.style == .plain && $0.string == "<<" }) == true else {
                    own.append((key.string ?? "\(key)", value(item)))
                    continue
                }
                let sources = item.sequence.map { Array($0).reversed() } ?? [item]
                for source in sources { merged += (value(source) as? [String: Any] ?? [:]).map { ($0.key, $0.value) } }
            }
            return Dictionary(merged + own, uniquingKeysWith: { $1 })
        }
    }

    /// A scalar's value: a plain one by YAML 1.1's implicit types, a quoted one as its string, one
    /// with an explicit tag (`!!int "12"`, `!!bool "yes"`) as that tag says. The basic resolver
    /// tags every untagged scalar `str`, so `!!str` on a plain scalar cannot be told from no tag
    /// and reads as untagged (Yams keeps the string): quote it instead.
    static func scalar(_ scalar: Node.Scalar) -> Any {
        let text = scalar.string
        let isPlain = scalar.style == .plain || scalar.style == .any
        // As Yams constructs them: a number only from a plain scalar, null only from a null word.
        switch Tag.Name(rawValue: scalar.tag.description) {
        case .int:
            if isPlain, let value = integer(text) { return value }
            return text
        case .float:
            if isPlain, let value = float(text) ?? integer(text).map(Double.init) { return value }
            return text
        case .bool:
            if let value = plain(text) as? Bool { return value }
            return text
        case .null: return plain(text) is NSNull ? NSNull() : text
        case .str, .implicit: return isPlain ? plain(text) : text
        default: return text  // tags the configuration has no use for
        }
    }

    /// A plain scalar's value: null, bool, int, float, else the string.
    static func plain(_ text: String) -> Any {
        if ["", "~", "null", "Null", "NULL"].contains(text) { return NSNull() }
        if ["yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].contains(text) { return true }
        if ["no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].contains(text) { return false }
        if let int = integer(text) { return int }
        // Yams tags it int by its rule and, when it cannot make the Int (too large, "-0"), a string.
        if looksInteger(text) { return text }
        if let double = float(text) { return double }
        return text
    }

    /// Whether Yams' int rule matches: `[-+]?` then `0b[01_]+`, `0o?[0-7_]+`, `0`, `[1-9][0-9_]*`,
    /// `0x[0-9a-fA-F_]+`, or `[1-9][0-9_]*(:[0-5]?[0-9])+`.
    static func looksInteger(_ text: String) -> Bool {
        let body = signed(Substring(text)).digits
        func all(_ s: Substring, _ allowed: String) -> Bool { !s.isEmpty && s.allSatisfy { allowed.contains($0) } }
        if body.hasPrefix("0b") { return all(body.dropFirst(2), "01_") }
        if body.hasPrefix("0x") { return all(body.dropFirst(2), "0123456789abcdefABCDEF_") }
        if body.hasPrefix("0o") { return all(body.dropFirst(2), "01234567_") }
        if body == "0" { return true }
        if body.hasPrefix("0") { return all(body.dropFirst(), "01234567_") }
        guard let first = body.first, "123456789".contains(first) else { return false }
        let parts = body.split(separator: ":", omittingEmptySubsequences: false)
        return all(parts[0], "0123456789_")
            && parts.dropFirst().allSatisfy { (1...2).contains($0.count) && all($0, "0123456789") && (Int($0) ?? 60) < 60 }
    }

    /// Splits an optional sign off.
    private static func signed(_ text: Substring) -> (negative: Bool, digits: Substring) {
        if let first = text.first, first == "-" || first == "+" { return (first == "-", text.dropFirst()) }
        return (false, text)
    }

    /// `0b…`, `0o…`/`0…` (octal), decimal, `0x…`, and base 60 (`1:30`); `_` separators.
    static func integer(_ text: String) -> Int? {
        let (negative, body) = signed(Substring(text))
        guard let first = body.first else { return nil }
        func digits(_ s: Substring, radix: Int) -> Int? {
            guard !s.isEmpty, s.allSatisfy({ $0 == "_" || $0.isHexDigit && Int(String($0), radix: radix) != nil }) else { return nil }
            let clean = s.filter { $0 != "_" }
            return clean.isEmpty ? nil : Int(clean, radix: radix)
        }
        var magnitude: Int?
        if body.hasPrefix("0b") {
            magnitude = digits(body.dropFirst(2), radix: 2)
        } else if body.hasPrefix("0x") {
            magnitude = digits(body.dropFirst(2), radix: 16)
        } else if body.hasPrefix("0o") {
            magnitude = digits(body.dropFirst(2), radix: 8)
        } else if first == "0" {
            // Yams cannot make a signed lone zero ("-0", "+0"); "0_" is octal zero.
            if body.count == 1 { return body.count == text.count ? 0 : nil }
            magnitude = body.dropFirst().allSatisfy { $0 == "_" } ? 0 : digits(body.dropFirst(), radix: 8)
        } else if body.contains(":") {
            let parts = body.split(separator: ":", omittingEmptySubsequences: false)
            guard first.isASCIIDigit, let head = digits(parts[0], radix: 10) else { return nil }
            var total = head
            for part in parts.dropFirst() {
                guard (1...2).contains(part.count), part.allSatisfy(\.isASCIIDigit), let v = Int(part), v <= 59 else { return nil }
                total = total * 60 + v
            }
            magnitude = total
        } else if first.isASCIIDigit {
            magnitude = digits(body, radix: 10)
        }
        guard let magnitude else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// Decimal with optional fraction and exponent, `.5`, base 60 with a fraction, `.inf`, `.nan`.
    static func float(_ text: String) -> Double? {
        let (negative, body) = signed(Substring(text))
        let sign: Double = negative ? -1 : 1
        if [".inf", ".Inf", ".INF"].contains(body) { return sign * .infinity }
        if [".nan", ".NaN", ".NAN"].contains(text) { return .nan }
        if body.contains(":") {
            // Base 60 with a fraction: [0-9][0-9_]*(:[0-5]?[0-9])+.[0-9_]*
            guard let dot = body.lastIndex(of: "."), body[body.index(after: dot)...].allSatisfy({ $0.isASCIIDigit || $0 == "_" }) else { return nil }
            let parts = body[..<dot].split(separator: ":", omittingEmptySubsequences: false)
            guard parts[0].first?.isASCIIDigit == true, parts[0].allSatisfy({ $0.isASCIIDigit || $0 == "_" }),
                let head = Int(parts[0].filter { $0 != "_" })
            else { return nil }
            var whole = head
            for part in parts.dropFirst() {
                guard (1...2).contains(part.count), part.allSatisfy(\.isASCIIDigit), let v = Int(part), v <= 59 else { return nil }
                whole = whole * 60 + v
            }
            return sign * (Double(whole) + (Double("0" + body[dot...].filter { $0 != "_" }) ?? 0))
        }
        var rest = body[...]
        var mantissa = ""
        if rest.first == "." {
            // `.5`, exponent only with a sign (`.5e+3`), and not after a sign (the rule's second form).
            guard !negative, text.first != "+" else { return nil }
            rest = rest.dropFirst()
            let fraction = rest.prefix { $0.isASCIIDigit || $0 == "_" }
            guard fraction.contains(where: \.isASCIIDigit) else { return nil }
            rest = rest.dropFirst(fraction.count)
            mantissa = "0." + fraction.filter { $0 != "_" }
            if rest.isEmpty { return Double(mantissa + "0") }
            guard rest.first == "e" || rest.first == "E" else { return nil }
            let exponent = rest.dropFirst()
            guard let s = exponent.first, s == "+" || s == "-", exponent.count > 1, exponent.dropFirst().allSatisfy(\.isASCIIDigit) else {
                return nil
            }
            return Double(mantissa + "0e" + exponent)
        }
        let whole = rest.prefix { $0.isASCIIDigit || $0 == "_" }
        guard let lead = whole.first, lead.isASCIIDigit else { return nil }
        rest = rest.dropFirst(whole.count)
        mantissa = whole.filter { $0 != "_" }
        if rest.first == "." {
            rest = rest.dropFirst()
            let fraction = rest.prefix { $0.isASCIIDigit || $0 == "_" }
            rest = rest.dropFirst(fraction.count)
            mantissa += "." + fraction.filter { $0 != "_" } + "0"
        }
        if let e = rest.first, e == "e" || e == "E" {
            var exponent = rest.dropFirst()
            var exponentSign = ""
            if let s = exponent.first, s == "+" || s == "-" {
                exponentSign = String(s)
                exponent = exponent.dropFirst()
            }
            guard !exponent.isEmpty, exponent.allSatisfy(\.isASCIIDigit) else { return nil }
            mantissa += "e" + exponentSign + exponent
            rest = rest.dropFirst(rest.count)
        }
        guard rest.isEmpty, let value = Double(mantissa) else { return nil }
        return sign * value
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
