import Foundation

/// A duration written as in the policy file: `90s`, `10m`, `24h`, `2d`, or combined (`1h30m`).
public struct PolicyDuration: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Length in seconds.
    public var seconds: Int

    /// A duration of `seconds`.
    public init(seconds: Int) { self.seconds = seconds }

    /// Parses `text`; nil when it is not a sequence of NUMBER UNIT pairs (units s, m, h, d).
    public init?(_ text: String) {
        var total = 0
        var number = 0
        var sawDigit = false
        var sawPair = false
        for c in text {
            if let digit = c.wholeNumberValue, c.isASCII {
                number = number * 10 + digit
                sawDigit = true
                guard number < 100_000_000 else { return nil }
            } else {
                let unit: Int
                switch c {
                case "s": unit = 1
                case "m": unit = 60
                case "h": unit = 3600
                case "d": unit = 86400
                default: return nil
                }
                guard sawDigit else { return nil }
                total += number * unit
                number = 0
                sawDigit = false
                sawPair = true
            }
        }
        guard sawPair, !sawDigit else { return nil }
        seconds = total
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = PolicyDuration(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a duration: \(text.debugDescription)"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { "\(seconds)s" }
}
