import APTLayerModel
import OSTree

extension Engine {
    /// Configures the OSTree remote `name` at `url` (added, or re-pointed when the URL changed),
    /// without GPG verification: the fleet driver pins what it pulls by commit checksum. Returns
    /// whether anything changed.
    @discardableResult
    public func setRemote(name: String, url: String) throws -> Bool {
        try Operand.checkRemote(name: name, url: url)
        return try locked("configure remote \(name)") { sysroot in try configureRemote(sysroot, name: name, url: url) }
    }

    /// Adds or re-points a remote (no GPG verification) under the caller's lock; whether it changed.
    func configureRemote(_ sysroot: Sysroot, name: String, url: String) throws -> Bool {
        let repo: Repo
        do { repo = try sysroot.repo() } catch { throw EngineError.wrap(error, "open repository") }
        if repo.remoteURL(name) == url { return false }
        // libostree's error already names the operation ("configure remote NAME: ...").
        do { try repo.setRemote(name: name, url: url) } catch { throw EngineError(.system, "\(error)", underlying: error) }
        return true
    }

    /// What the update driver compares a release with: the base commit of the booted deployment
    /// (nil when the sysroot is not booted) and of the stateroot's default one, and whether a
    /// deployment is staged.
    public struct BaseCommits: Sendable, Equatable {
        public var booted: String?
        public var `default`: String?
        public var hasStaged: Bool
    }

    /// Reads ``BaseCommits`` without building the status document (two commits, no package lists).
    public func baseCommits() throws -> BaseCommits {
        let sysroot = try openSysroot()
        let repo: Repo
        do { repo = try sysroot.repo() } catch { throw EngineError.wrap(error, "open repository") }
        func base(_ d: Deployment?) -> String? { d.map { (try? repo.commit($0.checksum)).map(baseChecksum(of:)) ?? $0.checksum } }
        let list = deployments(sysroot, try osname(sysroot))
        return BaseCommits(booted: base(sysroot.booted), default: base(list.first), hasStaged: list.contains(where: \.isStaged))
    }
}
