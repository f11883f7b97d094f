import APTLayerModel

/// What apt did or would do: parsed from `apt-get -s install`, or read back from the package sets
/// before and after a real install.
struct AptPlan: Sendable, Equatable {
    /// Packages apt would install or upgrade, with the version it picked.
    var installs: [Package] = []
    /// Installs that replace an installed version: name → old version.
    var replacedVersions: [String: String] = [:]
    /// Packages apt would remove.
    var removals: [String] = []

    /// Parses apt-get's simulation lines (`Inst name[:arch] [old] (version origin [arch]) [broken]`,
    /// `Remv name[:arch] [version]`). The architecture is the one inside the parentheses (a
    /// trailing `[]` lists packages left broken for the moment); `:arch` qualifiers of multiarch
    /// names are dropped, as dpkg's status file has them in its own field.
    init(simulationOutput: String) {
        for line in simulationOutput.split(separator: "\n") {
            if line.hasPrefix("Inst ") {
                let fields = line.dropFirst(5).split(separator: " ")
                guard let qualified = fields.first, let open = line.firstIndex(of: "("),
                    let close = line[open...].firstIndex(of: ")")
                else { continue }
                let inner = line[line.index(after: open)..<close]
                guard let version = inner.split(separator: " ").first else { continue }
                let arch = inner.split(separator: "[").last.map { String($0.prefix { $0 != "]" }) } ?? "all"
                let name = String(qualified.prefix { $0 != ":" })
                installs.append(Package(name: name, version: String(version), architecture: arch))
                if fields.count > 1, fields[1].hasPrefix("["), fields[1].hasSuffix("]") {
                    replacedVersions[name] = String(fields[1].dropFirst().dropLast())
                }
            } else if line.hasPrefix("Remv ") {
                if let qualified = line.dropFirst(5).split(separator: " ").first { removals.append(String(qualified.prefix { $0 != ":" })) }
            }
        }
        installs.sort()
        removals.sort()
    }

    /// What a real install did: `after` against `before` (dpkg's installed packages). The same
    /// packages, versions and architectures a simulation of it lists, so inputs hashes agree.
    init(before: [Package], after: [Package]) {
        // Keyed by name and architecture: a multiarch library is one package per architecture.
        func key(_ package: Package) -> String { "\(package.name):\(package.architecture)" }
        let old = Dictionary(before.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        let new = Set(after.map(key))
        for package in after where old[key(package)] != package {
            installs.append(package)
            if let replaced = old[key(package)] { replacedVersions[package.name] = replaced.version }
        }
        // A package whose architecture changed (any ↔ all) is an upgrade, as apt lists it, not a removal.
        let installed = Set(installs.map(\.name))
        removals = before.filter { !new.contains(key($0)) && !installed.contains($0.name) }.map(\.name)
        installs.sort()
        removals.sort()
    }

    /// Stable text for the inputs hash.
    var canonicalLines: [String] {
        installs.map { "inst \($0.metadataForm)" } + removals.map { "remv \($0)" }
    }

    /// The package set this plan makes of `base`.
    func applied(to base: [Package]) -> [Package] {
        let removed = Set(removals)
        var after = base.filter { !removed.contains($0.name) }
        let installed = Set(installs.map(\.name))
        after.removeAll { installed.contains($0.name) }
        return after + installs
    }
}
