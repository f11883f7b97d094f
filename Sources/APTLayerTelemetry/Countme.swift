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
