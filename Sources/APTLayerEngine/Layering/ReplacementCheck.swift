import APTLayerModel

/// rpm-ostree's rule for base package replacements: a replacement the base already carries, at
/// the same version or a newer one, has nothing left to replace. When a new base arrives
/// (`upgrade`, `rebase`, `deploy`) it is dropped with a note; when `override replace` asks for
/// it, that is an error.
struct ReplacementCheck {
    /// The base's packages by name.
    let base: [String: String]
    /// Refuse instead of dropping.
    let refuse: Bool
    /// One line per dropped replacement.
    private(set) var notes: [String] = []

    init(base packages: [Package], refuse: Bool) {
        base = Dictionary(packages.map { ($0.name, $0.version) }, uniquingKeysWith: { first, _ in first })
        self.refuse = refuse
    }

    /// Drops local replacements whose version is not newer than the base's.
    mutating func droppingObsolete(_ requested: RequestedState) throws -> RequestedState {
        var next = requested
        for local in requested.localReplacements {
            guard let version = base[local.name], DebianVersion.compare(local.version, version) <= 0 else { continue }
            try drop(local.name, because: "the base carries \(local.name) \(version), not older than the replacement \(local.version)")
            next.localReplacements.removeAll { $0.name == local.name }
        }
        return next.normalized
    }

    /// Drops suite replacements whose version in apt's `plan` is not newer than the base's (or
    /// that apt would not change at all).
    mutating func droppingObsolete(_ requested: RequestedState, plan: AptPlan) throws -> RequestedState {
        var next = requested
        for entry in requested.replacements {
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, let version = base[parts[0]] else { continue }
            let planned = plan.installs.first { $0.name == parts[0] }?.version
            if let planned, DebianVersion.compare(planned, version) > 0 { continue }
            let offered = planned.map { "\(parts[0]) \($0)" } ?? "no newer \(parts[0])"
            try drop(parts[0], because: "the base carries \(parts[0]) \(version) and \(parts[1]) has \(offered)")
            next.replacements.removeAll { $0 == entry }
        }
        return next.normalized
    }

    private mutating func drop(_ name: String, because reason: String) throws {
        if refuse { throw EngineError(.invalidArgument, "override replace: \(reason): nothing to replace") }
        notes.append("Dropped the replacement of \(name): \(reason).")
    }
}
