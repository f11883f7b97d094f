/// One installed Debian package: name, version and architecture.
public struct Package: Hashable, Comparable, Codable, Sendable {
    /// The package name.
    public var name: String
    /// The Debian version string.
    public var version: String
    /// The architecture (`amd64`, `all`...).
    public var architecture: String

    /// Creates a package record.
    public init(name: String, version: String, architecture: String) {
        self.name = name
        self.version = version
        self.architecture = architecture
    }

    /// `name version arch`, the form stored in commit metadata.
    public var metadataForm: String { "\(name) \(version) \(architecture)" }

    /// `name_version_arch`, the form Debian file names use.
    public var nameVersionArch: String { "\(name)_\(version)_\(architecture)" }

    /// Parses ``metadataForm``.
    public init?(metadataForm: String) {
        let parts = metadataForm.split(separator: " ").map(String.init)
        guard parts.count == 3 else { return nil }
        self.init(name: parts[0], version: parts[1], architecture: parts[2])
    }

    public static func < (a: Package, b: Package) -> Bool { (a.name, a.architecture) < (b.name, b.architecture) }
}

extension Package {
    /// The installed packages listed in a dpkg `status` file's text.
    public static func installed(statusFile text: String) -> [Package] { installedStanzas(statusFile: text).map(\.package).sorted() }

    /// The installed packages of a dpkg `status` file's text, in file order, each with its
    /// stanza's fields (name → value of the first line; continuation lines are left out).
    public static func installedStanzas(statusFile text: String) -> [(package: Package, fields: [Substring: Substring])] {
        var result: [(package: Package, fields: [Substring: Substring])] = []
        for stanza in text.split(separator: "\n\n", omittingEmptySubsequences: true) {
            var fields: [Substring: Substring] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix(" ") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[line[..<colon]] = line[line.index(after: colon)...].drop { $0 == " " }
            }
            guard let name = fields["Package"], let version = fields["Version"],
                let status = fields["Status"], status.hasSuffix(" installed")
            else { continue }
            result.append((Package(name: String(name), version: String(version), architecture: String(fields["Architecture"] ?? "all")), fields))
        }
        return result
    }
}
