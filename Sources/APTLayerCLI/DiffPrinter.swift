import APTLayerEngine
import APTLayerModel

/// Package changes as rpm-ostree prints them: one headed section per kind, one package per line.
enum DiffPrinter {
    /// `Added:` / `Removed:` / `Upgraded:` / `Downgraded:` sections, each line indented two spaces.
    static func text(_ diff: PackageDiff) -> String {
        var out = ""
        if !diff.upgraded.isEmpty {
            out += "Upgraded:\n" + diff.upgraded.map { "  \($0.name) \($0.from) -> \($0.to)\n" }.joined()
        }
        if !diff.downgraded.isEmpty {
            out += "Downgraded:\n" + diff.downgraded.map { "  \($0.name) \($0.from) -> \($0.to)\n" }.joined()
        }
        if !diff.removed.isEmpty {
            out += "Removed:\n" + diff.removed.map { "  \($0.name) \($0.version) \($0.architecture)\n" }.joined()
        }
        if !diff.added.isEmpty {
            out += "Added:\n" + diff.added.map { "  \($0.name) \($0.version) \($0.architecture)\n" }.joined()
        }
        return out
    }

    /// `1 upgraded, 2 added` (status's `Diff:` line).
    static func counts(_ diff: PackageDiff) -> String {
        var parts: [String] = []
        if !diff.upgraded.isEmpty { parts.append("\(diff.upgraded.count) upgraded") }
        if !diff.downgraded.isEmpty { parts.append("\(diff.downgraded.count) downgraded") }
        if !diff.removed.isEmpty { parts.append("\(diff.removed.count) removed") }
        if !diff.added.isEmpty { parts.append("\(diff.added.count) added") }
        return parts.isEmpty ? "no package changes" : parts.joined(separator: ", ")
    }

    /// rpm-ostree's `db diff` header.
    static func header(_ report: PackageDiffReport) -> String {
        "ostree diff commit from: \(report.from.label) (\(report.from.checksum))\n"
            + "ostree diff commit to:   \(report.to.label) (\(report.to.checksum))\n"
    }
}
