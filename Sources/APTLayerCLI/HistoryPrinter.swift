import APTLayerJournal
import APTLayerModel
import Foundation

/// `apt-layer history` as a table: a header, one transaction per line with what it changed, and
/// a hint when more are older than the page.
enum HistoryPrinter {
    static func text(_ transactions: [TransactionRecord], limit: Int) -> String {
        if transactions.isEmpty { return "No transactions.\n" }
        let rows = transactions.map { t -> [String] in
            let a = t.operation.arguments
            let what = ([t.operation.kind.rawValue] + (a.packages ?? []) + [a.ref, a.target].compactMap { $0 })
                .joined(separator: " ")
            return [RFC3339.string(t.createdAt), t.state.rawValue, what, t.requester, change(t), t.id]
        }
        let header = ["STARTED", "STATE", "OPERATION", "REQUESTER", "CHANGE", "ID"]
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        // The last column (the id) is not padded.
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in i == cells.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ") + "\n"
        }
        var out = line(header) + rows.map(line).joined()
        if transactions.count == limit {
            out += "(the \(limit) newest; --limit N for more, --json for everything about each, transaction show ID for one)\n"
        }
        return out
    }

    /// What a transaction did: its package changes, else its error or summary.
    static func change(_ t: TransactionRecord) -> String {
        if let error = t.error { return "error: \(error.prefix(60))" }
        if let diff = t.diff, !diff.isEmpty { return DiffPrinter.counts(diff) }
        if t.changed == false { return "no change" }
        if t.state == .queued || t.state == .running { return "-" }
        return t.summary.map { String($0.prefix(60)) } ?? "-"
    }
}
