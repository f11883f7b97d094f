import APTLayerModel
import OSTree

/// One side of a package comparison: what the user named and the commit it resolved to.
public struct DiffEndpoint: Codable, Sendable, Equatable {
    /// How `db diff` names it: `booted deployment`, `deployment 2`, a ref, a checksum.
    public var label: String
    /// The commit compared.
    public var checksum: String

    /// Creates an endpoint.
    public init(label: String, checksum: String) {
        self.label = label
        self.checksum = checksum
    }
}

/// A `db diff` answer: the two commits compared and what changed between them.
public struct PackageDiffReport: Codable, Sendable, Equatable {
    /// The older side.
    public var from: DiffEndpoint
    /// The newer side.
    public var to: DiffEndpoint
    /// The package changes from `from` to `to`.
    public var diff: PackageDiff

    /// Creates a report.
    public init(from: DiffEndpoint, to: DiffEndpoint, diff: PackageDiff) {
        self.from = from
        self.to = to
        self.diff = diff
    }
}

extension Engine {
    /// The packages of commit `checksum`: the list a layered commit records, else the dpkg status
    /// file inside the commit (a composed base).
    func packages(ofCommit checksum: String, repo: Repo) throws -> [Package] {
        let commit: Commit
        do { commit = try repo.commit(checksum) } catch { throw EngineError(.notFound, "no commit \(checksum.prefix(12)) in the repository") }
        let recorded = commit.strings(Layout.Key.packageList) ?? []
        if !recorded.isEmpty { return recorded.compactMap(Package.init(metadataForm:)) }
        do {
            let status = try repo.readFile("\(Layout.dpkgDatabase)/status", in: checksum)
            return Package.installed(statusFile: String(decoding: status, as: UTF8.self))
        } catch {
            return []
        }
    }

    /// Resolves what `db diff` accepts: a deployment index as `status` numbers them (up to 3 digits),
    /// a (prefix of a) deployment's checksum, a ref, or a full commit checksum.
    func resolveDiffSide(_ spec: String, sysroot: Sysroot, repo: Repo) throws -> DiffEndpoint {
        let all = sysroot.deployments
        // Up to three digits is an index; longer digit strings are checksum prefixes (hex can be all digits).
        if spec.count <= 3, let index = Int(spec) {
            guard all.indices.contains(index) else { throw EngineError(.notFound, "no deployment at index \(index) (there are \(all.count))") }
            return DiffEndpoint(label: "deployment \(index)", checksum: all[index].checksum)
        }
        let lower = spec.lowercased()
        if lower.count >= 4, lower.allSatisfy(\.isHexDigit) {
            let matches = Set(all.map(\.checksum).filter { $0.hasPrefix(lower) })
            if matches.count > 1 { throw EngineError(.invalidArgument, "checksum prefix \(spec) names more than one deployment") }
            if let only = matches.first { return DiffEndpoint(label: "deployment \(only.prefix(12))", checksum: only) }
        }
        guard let checksum = try? repo.resolve(spec) else {
            throw EngineError(.notFound, "\(spec) is not a deployment index, a deployment's checksum, a ref or a commit in the repository")
        }
        return DiffEndpoint(label: spec == checksum ? "commit \(checksum.prefix(12))" : spec, checksum: checksum)
    }

    /// Package changes between two commits, rpm-ostree's `db diff`: FROM defaults to the booted
    /// deployment (else the rollback), TO to the default (pending) one.
    public func packageDiff(from: String?, to: String?) throws -> PackageDiffReport {
        let sysroot = try openSysroot()
        let repo: Repo
        do { repo = try sysroot.repo() } catch { throw EngineError.wrap(error, "open repository") }
        let all = sysroot.deployments
        let osname = try self.osname(sysroot)
        let mine = all.indices.filter { all[$0].osname == osname }
        let bootedIndex = sysroot.booted.flatMap { b in all.firstIndex { $0.isSame(as: b) } }
        let fromSide: DiffEndpoint
        if let from {
            fromSide = try resolveDiffSide(from, sysroot: sysroot, repo: repo)
        } else if let bootedIndex {
            fromSide = DiffEndpoint(label: "booted deployment", checksum: all[bootedIndex].checksum)
        } else if mine.count > 1 {
            fromSide = DiffEndpoint(label: "rollback deployment", checksum: all[mine[1]].checksum)
        } else {
            throw EngineError(.notFound, "only one deployment: there is no other deployment to compare with (name two: db diff FROM TO)")
        }
        let toSide: DiffEndpoint
        if let to {
            toSide = try resolveDiffSide(to, sysroot: sysroot, repo: repo)
        } else if let first = mine.first {
            let label = bootedIndex == first ? "booted deployment" : (all[first].isStaged ? "staged deployment" : "pending deployment")
            toSide = DiffEndpoint(label: label, checksum: all[first].checksum)
        } else {
            throw EngineError(.notFound, "no deployment")
        }
        let diff = PackageDiff(
            from: try packages(ofCommit: fromSide.checksum, repo: repo), to: try packages(ofCommit: toSide.checksum, repo: repo))
        return PackageDiffReport(from: fromSide, to: toSide, diff: diff)
    }
}
