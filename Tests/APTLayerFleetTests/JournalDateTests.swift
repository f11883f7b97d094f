import APTLayerJournal
import Foundation
import GRDB
import Testing

/// The journal writes dates itself (`Date.journalText`, no ICU); GRDB reads and compares them as
/// its own. They must be GRDB's text to the millisecond, or a journal would sort and filter wrong.
@Suite(.tags(.fast)) struct JournalDateTests {
    /// GRDB's stored form, through its `DateFormatter`.
    static func grdb(_ date: Date) -> String? { String.fromDatabaseValue(date.databaseValue) }

    @Test func isGRDBsTextToTheMillisecond() {
        var generator = SystemRandomNumberGenerator()
        var dates: [Date] = [
            Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -0.0005), Date(timeIntervalSince1970: -1),
            Date(timeIntervalSince1970: 951_782_400),  // 2000-02-29
            Date(timeIntervalSince1970: 4_107_542_399.9999),  // rounds up to 2100-03-01 00:00:00.000
            Date(timeIntervalSince1970: -12_212_553_600.001), Date(timeIntervalSince1970: -12_219_292_800),  // 1582, GRDB's path
            Date(timeIntervalSince1970: 1_798_761_599.999), Date(timeIntervalSince1970: 1_798_761_600),  // new year 2027
            Date(timeIntervalSince1970: 1_796_663_440.123_456), Date(),
        ]
        for _ in 0..<5000 {
            dates.append(Date(timeIntervalSince1970: Double.random(in: -2_208_988_800...4_102_444_800, using: &generator)))
        }
        for _ in 0..<2000 {  // whole and nearly whole milliseconds, where truncation could differ
            let ms = Double(Int64.random(in: 0...4_102_444_800_000, using: &generator))
            dates.append(Date(timeIntervalSince1970: ms / 1000))
            dates.append(Date(timeIntervalSince1970: (ms - 0.000_001) / 1000))
        }
        let differing = dates.filter { $0.journalText != Self.grdb($0) }.prefix(5).map {
            "\($0.timeIntervalSince1970): \($0.journalText) vs \(Self.grdb($0) ?? "-")"
        }
        #expect(differing == [])
    }

    @Test func recordsReadBackAndCompareAsGRDBDates() throws {
        let queue = try DatabaseQueue()
        _ = try Journal(writer: queue)  // the journal's tables
        let early = Date(timeIntervalSince1970: 1_796_663_440.5)
        var rows = [
            OutboxRecord(createdAt: early, body: Data("a".utf8)), OutboxRecord(createdAt: early.addingTimeInterval(60), body: Data("b".utf8)),
        ]
        try queue.write { db in for i in rows.indices { try rows[i].insert(db) } }
        let stored = try queue.read { db in try String.fetchAll(db, sql: "SELECT createdAt FROM telemetry_outbox ORDER BY seq") }
        #expect(stored == rows.map { Self.grdb($0.createdAt) })
        let later = try queue.read { db in
            try OutboxRecord.filter(Column("createdAt") > early.addingTimeInterval(30)).fetchAll(db)
        }
        #expect(later.map(\.body) == [Data("b".utf8)])
        #expect(try queue.read { db in try OutboxRecord.fetchAll(db) }.map(\.createdAt) == rows.map(\.createdAt))
    }
}
