import Foundation
import GRDB

extension Date {
    /// The text the journal stores a date as: GRDB's own form (`Date.databaseValue`,
    /// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, to the nearest millisecond), which GRDB reads back and
    /// compares. GRDB makes it with a `DateFormatter`, that is through ICU: its locale, calendar and
    /// zone data, most of what the agent ran of ICU (and 2 MB of its data resident) from the
    /// first journal write on. Civil date from days since 1970 after Howard Hinnant's
    /// `civil_from_days`.
    public var journalText: String {
        // Milliseconds since 1970 rounded half up, as GRDB's text has them (tested against it).
        let milliseconds = ((timeIntervalSinceReferenceDate + 978_307_200) * 1000 + 0.5).rounded(.down)
        // Before 1583 ICU's calendar is Julian, after 1e15 ms far out: GRDB's own text there.
        guard milliseconds.isFinite, milliseconds >= -12_212_553_600_000, milliseconds < 1e15 else {
            return String.fromDatabaseValue(databaseValue) ?? ""
        }
        let total = Int64(milliseconds)
        var days = total / 86_400_000
        var inDay = total % 86_400_000
        if inDay < 0 {
            days -= 1
            inDay += 86_400_000
        }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2)) \(padded(inDay / 3_600_000, 2)):"
            + "\(padded(inDay / 60_000 % 60, 2)):\(padded(inDay / 1000 % 60, 2)).\(padded(inDay % 1000, 3))"
    }
}

extension DatabaseDateEncodingStrategy {
    /// ``Foundation/Date/journalText``: what every journal record's dates are stored as.
    public static let journal = DatabaseDateEncodingStrategy.custom { $0.journalText }
}
