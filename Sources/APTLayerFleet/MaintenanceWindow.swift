import Foundation

/// A weekly window in an IANA time zone (UTC when none) during which a staged update may start
/// finalizing. A policy's windows combine as a union; a window gates only the start.
public struct MaintenanceWindow: Codable, Sendable, Equatable {
    /// Week days, `Mon` … `Sun`.
    public var days: [String]
    /// Local start time, `HH:MM`.
    public var start: String
    public var length: PolicyDuration
    /// IANA zone, e.g. `Europe/Berlin`.
    public var tz: String?

    static let dayNames = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]  // Calendar weekday 1...7

    /// Checks days, start time, length and zone.
    public func validate() throws {
        guard !days.isEmpty, days.allSatisfy(Self.dayNames.contains) else {
            throw PolicyError.invalid("window days must be among Mon Tue Wed Thu Fri Sat Sun, got \(days)")
        }
        guard startTime != nil else { throw PolicyError.invalid("window start must be HH:MM, got \(start.debugDescription)") }
        guard length.seconds > 0, length.seconds <= 7 * 86400 else { throw PolicyError.invalid("window length must be within one week") }
        guard timeZone != nil else { throw PolicyError.invalid("unknown time zone \(tz ?? "")") }
    }

    var timeZone: TimeZone? { tz.map { TimeZone(identifier: $0) } ?? TimeZone(identifier: "UTC") }

    var startTime: (hour: Int, minute: Int)? {
        let parts = start.split(separator: ":")
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 }), let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h),
            (0...59).contains(m)
        else { return nil }
        return (h, m)
    }

    /// The window's occurrences that start between `from` and `to`, as intervals. A start time
    /// that does not exist that day (a DST gap) moves to the next valid instant.
    func occurrences(from: Date, to: Date) -> [DateInterval] {
        guard let zone = timeZone, let (hour, minute) = startTime else { return [] }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var result: [DateInterval] = []
        var day = calendar.startOfDay(for: from)
        while day <= to {
            let weekday = calendar.component(.weekday, from: day)
            if days.contains(Self.dayNames[weekday - 1]),
                let start = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day, matchingPolicy: .nextTime)
            {
                result.append(DateInterval(start: start, duration: Double(length.seconds)))
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { break }
            day = calendar.startOfDay(for: next)
        }
        return result
    }
}

extension Array where Element == MaintenanceWindow {
    /// Whether any window is open at `date` (no windows: always open).
    public func isOpen(at date: Date) -> Bool {
        guard !isEmpty else { return true }
        return contains { w in w.occurrences(from: date.addingTimeInterval(-8 * 86400), to: date).contains { $0.start <= date && date < $0.end } }
    }

    /// The next time a window opens at or after `date` (itself when one is open); nil without windows.
    public func nextOpening(after date: Date) -> Date? {
        guard !isEmpty else { return nil }
        if isOpen(at: date) { return date }
        return flatMap { $0.occurrences(from: date, to: date.addingTimeInterval(8 * 86400)) }.map(\.start).filter { $0 >= date }.min()
    }
}
