import APTLayerModel

/// The account databases a maintainer script may add system users and groups to.
enum SystemUsers {
    static let files = ["passwd", "group", "shadow", "gshadow"]

    static func names(_ text: String) -> Set<Substring> {
        Set(text.split(separator: "\n").compactMap { $0.split(separator: ":", omittingEmptySubsequences: false).first })
    }

    /// Lines of `after` whose account name is not in `before`.
    static func added(before: String, after: String) -> [String] {
        let known = names(before)
        return after.split(separator: "\n").filter { line in
            guard let name = line.split(separator: ":", omittingEmptySubsequences: false).first else { return false }
            return !known.contains(name)
        }.map(String.init)
    }

    /// `text` with `lines` appended, skipping accounts it already has.
    static func appending(_ lines: [String], to text: String) -> String {
        let extra = added(before: text, after: lines.joined(separator: "\n"))
        guard !extra.isEmpty else { return text }
        let base = text.isEmpty || text.hasSuffix("\n") ? text : text + "\n"
        return base + extra.joined(separator: "\n") + "\n"
    }
}
