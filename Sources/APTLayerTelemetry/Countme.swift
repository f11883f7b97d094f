import Foundation

/// rpm-ostree's countme arithmetic, reproduced exactly: week windows of 604800 s counted from
/// Monday 1970-01-05 00:00 UTC, an age bucket from the first successful count, and at most one
/// count per window.
public enum Countme {
    /// A window's width: one week.
    public static let windowWidth: Int64 = 604_800
    /// Monday 1970-01-05 00:00 UTC.
    public static let windowOffset: Int64 = 345_600

    /// The week window `t` (unix seconds) falls in.
    public static func window(_ t: Int64) -> Int64 {
        (t - windowOffset) / windowWidth
    }

    /// The age bucket: `n = window(now) − window(epoch) + 1`; 1 → 1, 2–4 → 2, 5–24 → 3, ≥ 25 → 4.
    public static func bucket(epoch: Int64, now: Int64) -> Int {
        let n = window(now) - window(epoch) + 1
        switch n {
        case ...1: return 1
        case 2...4: return 2
        case 5...24: return 3
        default: return 4
        }
    }

    /// The bucket to send at `now`, or nil when this window was already counted.
    public static func due(_ cookie: CountmeCookie?, now: Int64) -> Int? {
        guard let cookie else { return 1 }
        guard window(now) > window(cookie.window) else { return nil }
        return bucket(epoch: cookie.epoch, now: now)
    }
}

/// The countme cookie: when this host was first counted (`epoch`) and last counted (`window`),
/// unix seconds. Nothing else is stored, and nothing of it is sent.
public struct CountmeCookie: Codable, Sendable, Equatable {
    public var epoch: Int64
    public var window: Int64

    public init(epoch: Int64, window: Int64) {
        self.epoch = epoch
        self.window = window
    }

    /// The cookie after a successful count at `now`.
    public static func counted(_ previous: CountmeCookie?, now: Int64) -> CountmeCookie {
        CountmeCookie(epoch: previous?.epoch ?? now, window: now)
    }

    /// Reads the cookie; nil when there is none (or it is unreadable: the host counts as new).
    public static func load(_ path: String) -> CountmeCookie? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(CountmeCookie.self, from: data)
    }

    /// Writes the cookie atomically (a temporary file renamed over it).
    public func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// The booted system's os-release fields countme's User-Agent is made of.
public struct OSRelease: Sendable, Equatable {
    public var fields: [String: String]

    /// Parses os-release text (shell-style `KEY=value`, values optionally quoted).
    public init(text: String) {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            let key = String(trimmed[..<eq])
            var value = String(trimmed[trimmed.index(after: eq)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" {
                    value = value.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
                }
            }
            fields[key] = value
        }
        self.fields = fields
    }

    /// `os-release` of a deployment directory (`usr/lib/os-release`, else `etc/os-release`).
    public static func load(root: String) -> OSRelease? {
        for path in ["usr/lib/os-release", "etc/os-release"] {
            if let text = try? String(contentsOfFile: "\(root)/\(path)", encoding: .utf8) { return OSRelease(text: text) }
        }
        return nil
    }

    /// `apt-layer (NAME VERSION_ID; VARIANT_ID; Linux.ARCH)`; characters that would break the
    /// header's shape (parentheses, semicolons, control characters) are left out.
    public func userAgent(arch: String) -> String {
        func clean(_ s: String?) -> String {
            String((s ?? "").unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f && !"();".unicodeScalars.contains($0) })
        }
        let name = clean(fields["NAME"] ?? "Linux")
        let version = clean(fields["VERSION_ID"])
        let nameVersion = version.isEmpty ? name : "\(name) \(version)"
        return "apt-layer (\(nameVersion); \(clean(fields["VARIANT_ID"])); Linux.\(clean(arch)))"
    }
}
