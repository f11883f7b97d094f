/// What apt did or would do: parsed from `apt-get -s install`, or read back from the package sets
/// before and after a real install.
struct AptPlan: Sendable, Equatable {
    /// Packages apt would install or upgrade, with the version it picked.
    var installs: [Package] = []
    /// Installs that replace an installed version: name → old version.
    var replacedVersions: [String: String] = [:]
    /// Packages apt would remove.
    var removals: [String] = []

    /// Parses apt-get's simulation lines (`Inst name [old] (version origin [arch])`, `Remv name [version]`).
    init(simulationOutput: String) {
        for line in simulationOutput.split(separator: "\n") {
            if line.hasPrefix("Inst ") {
                let fields = line.dropFirst(5).split(separator: " ")
                guard let name = fields.first, let open = line.firstIndex(of: "(") else { continue }
                let inner = line[line.index(after: open)...].split(separator: " ")
                guard let version = inner.first else { continue }
                let arch = line.split(separator: "[").last.map { String($0.prefix { $0 != "]" }) } ?? "all"
                installs.append(Package(name: String(name), version: String(version), architecture: arch))
                if fields.count > 1, fields[1].hasPrefix("[") {
                    replacedVersions[String(name)] = String(fields[1].dropFirst().dropLast())
                }
            } else if line.hasPrefix("Remv ") {
                if let name = line.dropFirst(5).split(separator: " ").first { removals.append(String(name)) }
            }
        }
        installs.sort()
        removals.sort()
    }

    /// What a real install did: `after` against `before` (dpkg's installed packages). The same
    /// packages, versions and architectures a simulation of it lists, so inputs hashes agree.
    init(before: [Package], after: [Package]) {
        let old = Dictionary(before.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let new = Set(after.map(\.name))
        for package in after where old[package.name] != package {
            installs.append(package)
            if let replaced = old[package.name] { replacedVersions[package.name] = replaced.version }
        }
        removals = before.map(\.name).filter { !new.contains($0) }
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
