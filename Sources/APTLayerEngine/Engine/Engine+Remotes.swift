import OSTree

extension Engine {
    /// Configures the OSTree remote `name` at `url` (added, or re-pointed when the URL changed),
    /// without GPG verification: the fleet driver pins what it pulls by commit checksum. Returns
    /// whether anything changed.
    @discardableResult
    public func setRemote(name: String, url: String) throws -> Bool {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw EngineError(.invalidArgument, "invalid remote name \(name.debugDescription)")
        }
        guard url.isPrintableASCII(allowingSpace: false) else { throw EngineError(.invalidArgument, "invalid remote URL \(url.debugDescription)") }
        return try locked("configure remote \(name)") { sysroot in
            let repo: Repo
            do { repo = try sysroot.repo() } catch { throw EngineError.wrap(error, "open repository") }
            if repo.remoteURL(name) == url { return false }
            do { try repo.setRemote(name: name, url: url) } catch { throw EngineError.wrap(error, "configure remote \(name)") }
            return true
        }
    }

    /// The base commit of the booted deployment (nil when the sysroot is not booted), and of the
    /// default one: what the update driver compares a release's commit with.
    public func baseCommits() throws -> (booted: String?, default: String?) {
        let status = try status()
        let booted = status.deployments.first(where: \.booted)
        let first = status.deployments.first
        return (booted?.baseChecksum, first?.baseChecksum)
    }
}
