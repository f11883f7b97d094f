/// A kernel command line as an ordered list of `key` / `key=value` words.
public struct KernelArguments: Equatable, Sendable, CustomStringConvertible {
    /// Requested changes, applied in order: deletions, replacements, then appends.
    public struct Edits: Sendable, Equatable, Hashable {
        public var append: [String] = []
        public var delete: [String] = []
        public var replace: [String] = []
        /// Creates edits.
        public init(append: [String] = [], delete: [String] = [], replace: [String] = []) {
            self.append = append
            self.delete = delete
            self.replace = replace
        }
    }

    /// The words, in order.
    public private(set) var arguments: [String]

    /// The longest command line accepted (x86's `COMMAND_LINE_SIZE`; the kernel truncates beyond it).
    public static let maximumLength = 2048
    /// The longest single argument accepted.
    public static let maximumArgumentLength = 1024

    /// Splits a command line on spaces outside double quotes (`dyndbg="file a.c +p"` is one word).
    /// The command line without libostree's own `ostree=` argument, which libostree writes at
    /// deploy time and no one may edit: what `kargs` and `status` show.
    public static func userVisible(_ commandLine: String) -> String {
        commandLine.split(separator: " ").filter { !$0.hasPrefix("ostree=") }.joined(separator: " ")
    }

    public init(_ commandLine: String) {
        var words: [String] = []
        var word = ""
        var quoted = false
        for character in commandLine {
            if character == "\"" { quoted.toggle() }
            if character == " " && !quoted {
                if !word.isEmpty { words.append(word) }
                word = ""
            } else {
                word.append(character)
            }
        }
        if !word.isEmpty { words.append(word) }
        arguments = words
    }

    /// Checks one argument the way the kernel and a BLS `options` line need it: printable ASCII,
    /// a non-empty key without quotes, spaces only inside a balanced double-quoted value, at most
    /// ``maximumArgumentLength`` bytes, and not libostree's own `ostree=` argument.
    public static func validate(_ word: String, what: String = "kernel argument") throws {
        func refuse(_ why: String) -> EngineError {
            let shown = word.unicodeScalars.prefix(64).map {
                $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F ? String($0) : "\\u{\(String($0.value, radix: 16))}"
            }
            .joined()
            return EngineError(.invalidArgument, "\(what) \"\(shown)\(word.unicodeScalars.count > 64 ? "…" : "")\" \(why)")
        }
        guard !word.isEmpty else { throw EngineError(.invalidArgument, "\(what) is empty") }
        guard word.utf8.count <= maximumArgumentLength else { throw refuse("is longer than \(maximumArgumentLength) bytes") }
        guard word.isPrintableASCII(allowingSpace: true) else {
            throw refuse("has a control or non-ASCII character")
        }
        let key = word.prefix { $0 != "=" }
        guard !key.isEmpty, !key.contains("\""), !key.contains(" ") else { throw refuse("needs a key without quotes or spaces") }
        guard key != "ostree" else { throw refuse("is managed by libostree") }
        let quotes = word.filter { $0 == "\"" }.count
        guard quotes % 2 == 0 else { throw refuse("has an unbalanced double quote") }
        guard Self(word).arguments == [word] else { throw refuse("has a space outside double quotes") }
    }

    /// Checks every word of `edits` (a replacement's `KEY=OLD=NEW` as its key and its values).
    public static func validate(_ edits: Edits) throws {
        for word in edits.append { try validate(word) }
        for word in edits.delete { try validate(word, what: "kernel argument to delete") }
        for spec in edits.replace {
            try validate(spec, what: "kernel argument replacement")
        }
    }

    public var description: String { arguments.joined(separator: " ") }

    private static func key(_ word: String) -> Substring { word.split(separator: "=", maxSplits: 1).first ?? Substring(word) }

    /// Applies `edits`; deleting or replacing an argument that is not there is an error, and so is
    /// an invalid word or a command line over ``maximumLength``.
    public mutating func apply(_ edits: Edits) throws {
        try Self.validate(edits)
        for word in edits.delete {
            if let i = arguments.firstIndex(of: word) {
                arguments.remove(at: i)
            } else if !word.contains("="), arguments.contains(where: { Self.key($0) == Substring(word) }) {
                arguments.removeAll { Self.key($0) == Substring(word) }
            } else {
                throw EngineError(.invalidArgument, "kernel argument \(word) is not present")
            }
        }
        for spec in edits.replace {
            // KEY=VALUE=NEW replaces that exact pair; KEY=NEW replaces the only KEY.
            let parts = spec.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2 else { throw EngineError(.invalidArgument, "--replace needs KEY=VALUE or KEY=OLD=NEW: \(spec)") }
            if parts.count == 3, let i = arguments.firstIndex(of: "\(parts[0])=\(parts[1])") {
                arguments[i] = "\(parts[0])=\(parts[2])"
            } else if parts.count == 2 {
                let matches = arguments.indices.filter { Self.key(arguments[$0]) == Substring(parts[0]) }
                guard matches.count == 1 else {
                    throw EngineError(
                        .invalidArgument,
                        matches.isEmpty
                            ? "kernel argument \(parts[0]) is not present" : "kernel argument \(parts[0]) has several values; use KEY=OLD=NEW")
                }
                arguments[matches[0]] = spec
            } else {
                throw EngineError(.invalidArgument, "kernel argument \(parts[0])=\(parts[1]) is not present")
            }
        }
        arguments += edits.append
        let length = description.utf8.count
        guard length <= Self.maximumLength else {
            throw EngineError(.invalidArgument, "the kernel command line would be \(length) bytes, over the kernel's \(Self.maximumLength)")
        }
    }
}
