import Foundation

/// An OpenSSH `allowed_signers` file (ssh-keygen(1), "ALLOWED SIGNERS"): `principals [options]
/// keytype base64-key [comment]`. Entries with `cert-authority`, or key types other than
/// ssh-ed25519, are not used (ssh-keygen would accept them; we only verify ed25519 signatures).
public struct AllowedSigners: Sendable {
    public struct Entry: Sendable, Equatable {
        public var principals: [String]
        /// From a `namespaces="…"` option; nil = any namespace.
        public var namespaces: [String]?
        /// The public key blob (`string "ssh-ed25519" || string key`).
        public var key: Data
    }

    public var entries: [Entry]

    /// Parses the file's text. Malformed lines are an error naming the line.
    public init(_ text: String) throws {
        entries = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var fields = Self.fields(line)
            guard fields.count >= 3 else { throw PolicyError.signature("allowed signers line \(number + 1): too few fields") }
            let principals = fields.removeFirst().split(separator: ",").map(String.init)
            var options: [String] = []
            if !fields[0].hasPrefix("ssh-") && !fields[0].hasPrefix("ecdsa-") && !fields[0].hasPrefix("sk-") {
                options = Self.splitOptions(fields.removeFirst())
            }
            guard fields.count >= 2 else { throw PolicyError.signature("allowed signers line \(number + 1): no key") }
            guard fields[0] == "ssh-ed25519", !options.contains(where: { $0.lowercased() == "cert-authority" }) else { continue }
            guard let key = Data(base64Encoded: fields[1]) else {
                throw PolicyError.signature("allowed signers line \(number + 1): key is not base64")
            }
            var namespaces: [String]?
            for option in options where option.lowercased().hasPrefix("namespaces=") {
                namespaces = String(option.dropFirst("namespaces=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    .split(separator: ",").map(String.init)
            }
            entries.append(Entry(principals: principals, namespaces: namespaces, key: key))
        }
    }

    /// The entry trusting `key` in `namespace`, if any.
    public func entry(for key: Data, namespace: String) -> Entry? {
        entries.first { $0.key == key && ($0.namespaces?.contains(namespace) ?? true) }
    }

    /// Whitespace-separated fields, keeping quoted strings (options) together.
    static func fields(_ line: String) -> [String] { split(line, at: [" ", "\t"]).filter { !$0.isEmpty } }

    /// Comma-separated options, keeping quoted values together.
    static func splitOptions(_ text: String) -> [String] { split(text, at: [","]) }

    /// `text` split at `separators` outside double quotes (quotes are kept).
    static func split(_ text: String, at separators: Set<Character>) -> [String] {
        var result: [String] = []
        var current = ""
        var quoted = false
        for c in text {
            if c == "\"" { quoted.toggle() }
            if separators.contains(c) && !quoted {
                result.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        result.append(current)
        return result
    }
}
