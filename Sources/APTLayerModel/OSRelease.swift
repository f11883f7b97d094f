import Foundation

/// A system's os-release fields: the distribution's `ID`, `NAME`, `VERSION_ID`, and countme's
/// User-Agent made of them.
public struct OSRelease: Sendable, Equatable {
    public var fields: [String: String]

    /// Parses os-release text (shell-style `KEY=value`, values optionally quoted).
    public init(text: String) {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
            let key = String(trimmed[..<eq])
            var value = String(trimmed[trimmed.index(after: eq)...])
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" {
                    value = value.replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
                }
            }
            fields[key] = value
        }
        self.fields = fields
    }

    /// `os-release` of a deployment directory (`usr/lib/os-release`, else `etc/os-release`).
    public static func load(root: String) -> OSRelease? {
        for path in ["usr/lib/os-release", "etc/os-release"] {
            if let text = try? String(contentsOfFile: "\(root)/\(path)", encoding: .utf8) { return OSRelease(text: text) }
        }
        return nil
    }

    /// `apt-layer (NAME VERSION_ID; VARIANT_ID; Linux.ARCH)`; characters that would break the
    /// header's shape (parentheses, semicolons, control characters) are left out.
    public func userAgent(arch: String) -> String {
        func clean(_ s: String?) -> String {
            String((s ?? "").unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f && !"();".unicodeScalars.contains($0) })
        }
        let name = clean(fields["NAME"] ?? "Linux")
        let version = clean(fields["VERSION_ID"])
        let nameVersion = version.isEmpty ? name : "\(name) \(version)"
        return "apt-layer (\(nameVersion); \(clean(fields["VARIANT_ID"])); Linux.\(clean(arch)))"
    }
}
