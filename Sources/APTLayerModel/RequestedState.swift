/// What the admin asked for on top of the base: the input of every layering build.
public struct RequestedState: Codable, Sendable, Equatable {
    /// Package names to layer from the apt sources.
    public var packages: [String] = []
    /// Local .deb files, by content.
    public var localPackages: [LocalPackage] = []
    /// Base packages to remove.
    public var removals: [String] = []
    /// Base packages replaced by the version a suite of the apt sources has: `name/suite`
    /// (`override replace --from-repo SUITE NAME`).
    public var replacements: [String] = []
    /// Base packages replaced by local .deb files (`override replace ./name_version_arch.deb`).
    public var localReplacements: [LocalPackage] = []

    /// Creates a requested state.
    public init(
        packages: [String] = [], localPackages: [LocalPackage] = [], removals: [String] = [], replacements: [String] = [],
        localReplacements: [LocalPackage] = []
    ) {
        self.packages = packages.sorted()
        self.localPackages = localPackages.sorted { $0.sha256 < $1.sha256 }
        self.removals = removals.sorted()
        self.replacements = replacements.sorted()
        self.localReplacements = localReplacements.sorted { $0.name < $1.name }
    }

    /// The same state in its canonical order (after edits of the lists).
    public var normalized: RequestedState {
        RequestedState(
            packages: packages, localPackages: localPackages, removals: removals, replacements: replacements, localReplacements: localReplacements)
    }

    /// Names of the base packages replaced, from a suite or by a local file.
    public var replacedNames: [String] {
        (replacements.map { String($0.split(separator: "/").first ?? "") } + localReplacements.map(\.name)).sorted()
    }

    /// Whether nothing is layered, removed or replaced (the deployment is the plain base).
    public var isEmpty: Bool { packages.isEmpty && localPackages.isEmpty && removals.isEmpty && replacements.isEmpty && localReplacements.isEmpty }
}

/// A local .deb recorded by its SHA-256 and `name_version_arch`.
public struct LocalPackage: Codable, Sendable, Hashable {
    /// Hex SHA-256 of the file.
    public var sha256: String
    /// The package's name.
    public var name: String
    /// `name_version_arch`.
    public var nameVersionArch: String

    /// Creates a record.
    public init(sha256: String, name: String, nameVersionArch: String) {
        self.sha256 = sha256
        self.name = name
        self.nameVersionArch = nameVersionArch
    }

    /// The version part of ``nameVersionArch``.
    public var version: String {
        let parts = nameVersionArch.split(separator: "_")
        return parts.count == 3 ? String(parts[1]) : ""
    }

    /// The architecture part of ``nameVersionArch``.
    public var architecture: String { nameVersionArch.split(separator: "_").count == 3 ? String(nameVersionArch.split(separator: "_")[2]) : "" }

    /// `sha256:name_version_arch`, the form kept in origin files and commit metadata.
    public var recordForm: String { "\(sha256):\(nameVersionArch)" }

    /// Parses ``recordForm``.
    public init?(recordForm: String) {
        guard let colon = recordForm.firstIndex(of: ":") else { return nil }
        sha256 = String(recordForm[..<colon])
        nameVersionArch = String(recordForm[recordForm.index(after: colon)...])
        name = String(nameVersionArch.split(separator: "_").first ?? "")
        guard sha256.count == 64, !name.isEmpty else { return nil }
    }
}
