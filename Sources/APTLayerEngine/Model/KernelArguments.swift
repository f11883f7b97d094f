/// A kernel command line as an ordered list of `key` / `key=value` words.
public struct KernelArguments: Equatable, Sendable, CustomStringConvertible {
    /// Requested changes, applied in order: deletions, replacements, then appends.
    public struct Edits: Sendable, Equatable, Hashable, Codable {
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

    /// Splits a command line on spaces.
    public init(_ commandLine: String) {
        arguments = commandLine.split(separator: " ").map(String.init)
    }

    public var description: String { arguments.joined(separator: " ") }

    private static func key(_ word: String) -> Substring { word.split(separator: "=", maxSplits: 1).first ?? Substring(word) }

    /// Applies `edits`; deleting or replacing an argument that is not there is an error.
    public mutating func apply(_ edits: Edits) throws {
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
    }
}
