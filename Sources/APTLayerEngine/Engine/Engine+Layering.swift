import APTLayerModel
import Foundation
import OSTree

extension Engine {
    /// Layers packages (names from the apt sources, or paths to local .deb files).
    public func install(_ items: [String], flags: LayeringFlags = .init(), token: CancellationToken = .init()) throws -> ChangeResult {
        guard !items.isEmpty else { throw EngineError(.invalidArgument, "install: name at least one package or .deb file") }
        guard let live = flags.live else { return try layer(items, flags: flags, token: token) }
        // install --apply-live: refused before anything is built on a host that cannot take it.
        try checkLiveable()
        let built = try layer(items, flags: flags, token: token)
        let applied = try applyLive(options: live, token: token)
        return ChangeResult(
            changed: built.changed || applied.changed, summary: "\(built.summary) \(applied.summary)", diff: built.diff, checksum: built.checksum)
    }

    func layer(_ items: [String], flags: LayeringFlags, token: CancellationToken) throws -> ChangeResult {
        try relayer(.install, flags: flags, token: token) { origin in
            var requested = origin.requested
            for item in items {
                if let file = try localFile(item) {
                    let local = try LocalPackages(stateDirectory: stateDirectory).add(file.path, token: token)
                    if let digest = file.digest, local.sha256 != digest {
                        throw EngineError(.badPackage, "uploaded package \(item) changed on disk")
                    }
                    requested.localPackages.removeAll { $0.name == local.name }
                    requested.localPackages.append(local)
                } else {
                    try Operand.checkPackageName(item)
                    if requested.packages.contains(item) {
                        if flags.idempotent { continue }
                        throw EngineError(.invalidArgument, "package \(item) is already requested")
                    }
                    requested.packages.append(item)
                }
            }
            var next = origin
            next.requested = requested.normalized
            return next
        }
    }

    /// Removes layered packages (by name; local packages by their package name).
    public func uninstall(_ names: [String], all: Bool = false, flags: LayeringFlags = .init(), token: CancellationToken = .init()) throws
        -> ChangeResult
    {
        guard all || !names.isEmpty else { throw EngineError(.invalidArgument, "uninstall: name at least one package, or --all") }
        return try relayer(.uninstall, flags: flags, token: token) { origin in
            var next = origin
            if all {
                next.requested = RequestedState(
                    removals: origin.requested.removals, replacements: origin.requested.replacements,
                    localReplacements: origin.requested.localReplacements)
                return next
            }
            var packages = origin.requested.packages
            var locals = origin.requested.localPackages
            for name in names {
                if packages.contains(name) {
                    packages.removeAll { $0 == name }
                } else if locals.contains(where: { $0.name == name }) {
                    locals.removeAll { $0.name == name }
                } else if !flags.idempotent {
                    throw EngineError(.notFound, "package \(name) is not layered")
                }
            }
            next.requested.packages = packages
            next.requested.localPackages = locals
            next.requested = next.requested.normalized
            return next
        }
    }

    /// Removes base packages from the deployment (`override remove`).
    public func overrideRemove(_ names: [String], flags: LayeringFlags = .init(), token: CancellationToken = .init()) throws -> ChangeResult {
        guard !names.isEmpty else { throw EngineError(.invalidArgument, "override remove: name at least one package") }
        return try relayer(.overrideRemove, flags: flags, token: token) { origin in
            var next = origin
            var removals = origin.requested.removals
            for name in names {
                try Operand.checkPackageName(name)
                if removals.contains(name) {
                    if flags.idempotent { continue }
                    throw EngineError(.invalidArgument, "package \(name) is already removed")
                }
                removals.append(name)
            }
            next.requested.removals = removals
            next.requested = next.requested.normalized
            return next
        }
    }

    /// Restores removed or replaced base packages (`override reset`).
    public func overrideReset(_ names: [String], all: Bool = false, flags: LayeringFlags = .init(), token: CancellationToken = .init()) throws
        -> ChangeResult
    {
        guard all || !names.isEmpty else { throw EngineError(.invalidArgument, "override reset: name at least one package, or --all") }
        return try relayer(.overrideReset, flags: flags, token: token) { origin in
            var next = origin
            if all {
                next.requested.removals = []
                next.requested.replacements = []
                next.requested.localReplacements = []
            }
            for name in names where !all {
                guard next.requested.removals.contains(name) || next.requested.replacedNames.contains(name) else {
                    if flags.idempotent { continue }
                    throw EngineError(.notFound, "no override for package \(name)")
                }
                next.requested.removals.removeAll { $0 == name }
                next.requested.replacements.removeAll { $0.split(separator: "/").first.map(String.init) == name }
                next.requested.localReplacements.removeAll { $0.name == name }
            }
            next.requested = next.requested.normalized
            return next
        }
    }

    /// Replaces base packages in the next deployment (`override replace`): with local .deb files
    /// (paths or upload digests), or with the version `suite` of the apt sources has
    /// (`--from-repo SUITE NAME…`, apt's `NAME/SUITE`). A replacement of one package replaces the
    /// earlier one; `override reset NAME` restores the base's.
    public func overrideReplace(_ items: [String], fromRepo suite: String? = nil, flags: LayeringFlags = .init(), token: CancellationToken = .init())
        throws -> ChangeResult
    {
        guard !items.isEmpty else {
            throw EngineError(.invalidArgument, "override replace: name at least one .deb file (or package, with --from-repo)")
        }
        if let suite { try Operand.checkSuite(suite) }
        return try relayer(.overrideReplace, flags: flags, token: token) { origin in
            var next = origin
            for item in items {
                let name: String
                var local: LocalPackage?
                if let suite {
                    try Operand.checkPackageName(item)
                    name = item
                } else {
                    guard let file = try localFile(item) else {
                        throw EngineError(.invalidArgument, "override replace: \(item) is not a .deb file (name a package with --from-repo SUITE)")
                    }
                    let stored = try LocalPackages(stateDirectory: stateDirectory).add(file.path, token: token)
                    if let digest = file.digest, stored.sha256 != digest {
                        throw EngineError(.badPackage, "uploaded package \(item) changed on disk")
                    }
                    name = stored.name
                    local = stored
                }
                if next.requested.packages.contains(name) || next.requested.localPackages.contains(where: { $0.name == name }) {
                    throw EngineError(.invalidArgument, "package \(name) is layered, not a base package: install the new version instead")
                }
                if next.requested.removals.contains(name) {
                    throw EngineError(.invalidArgument, "base package \(name) is removed: override reset \(name) first")
                }
                next.requested.replacements.removeAll { $0.split(separator: "/").first.map(String.init) == name }
                next.requested.localReplacements.removeAll { $0.name == name }
                if let local {
                    next.requested.localReplacements.append(local)
                } else if let suite {
                    next.requested.replacements.append("\(name)/\(suite)")
                }
            }
            next.requested = next.requested.normalized
            return next
        }
    }

    /// Moves to the newest commit of the base ref and re-applies the layering; `check` only reports.
    public func upgrade(check: Bool = false, flags: LayeringFlags = .init(), token: CancellationToken = .init()) throws -> ChangeResult {
        var flags = flags
        flags.dryRun = flags.dryRun || check
        flags.refresh = true
        // An image base's check reads the manifest and configuration the tag points at, no layer.
        if check, let origin = try pendingOrigin(), let image = origin.image {
            return try checkImageUpgrade(image, deployed: origin.imageDigest, token: token)
        }
        var pulled: ImageImporter.Pulled?
        return try relayer(.upgrade, detail: check ? "--check" : nil, flags: flags, token: token) { origin in
            var next = origin
            next.overrideCommit = nil
            return next
        } base: { sysroot, origin in
            if let image = origin.image {
                pulled = try pullImage(sysroot, image, token: token)
                return pulled!.commit
            }
            return try resolveBase(sysroot, refspec: origin.baseRefspec, pull: true, token: token)
        } adjust: { origin, _ in
            var next = origin
            if let pulled { next.imageDigest = pulled.digest }
            return next
        }
    }

    /// Moves the base to a commit of the base ref's history, by version or checksum, keeping the layering.
    public func deploy(_ target: String, flags: LayeringFlags = .init(), token: CancellationToken = .init()) throws -> ChangeResult {
        try relayer(.deploy, detail: target, flags: flags, token: token) { origin in
            guard origin.image == nil else {
                throw EngineError(
                    .invalidArgument,
                    "the base is an image (\(origin.baseRefspec)), which has no commit history: rebase to IMAGE@sha256:DIGEST instead")
            }
            return origin
        } base: { sysroot, origin in
            let checksum = try findCommit(sysroot, refspec: origin.baseRefspec, target: target)
            return checksum
        } adjust: { origin, checksum in
            var next = origin
            next.overrideCommit = checksum
            return next
        }
    }

    /// Switches the base to another ref, keeping the layering; with `revision` (a version or checksum
    /// of that ref, as `rpm-ostree rebase REF REVISION`) pinned to that commit. A full checksum on a
    /// remote ref pulls just that commit (its checksum is the trust: libostree verifies every
    /// object against it). On a sysroot with no deployment yet it makes the first one.
    public func rebase(
        _ refspec: String, revision: String? = nil, remoteURL: String? = nil, flags: LayeringFlags = .init(), token: CancellationToken = .init()
    ) throws -> ChangeResult {
        try Operand.checkRefspec(refspec)
        if ImageReference.isImage(refspec) {
            return try rebase(image: try ImageReference(parsing: refspec), revision: revision, remoteURL: remoteURL, flags: flags, token: token)
        }
        if let remoteURL { try Operand.checkRemote(refspec: refspec, url: remoteURL) }
        return try relayer(
            .rebase, detail: [refspec, revision].compactMap { $0 }.joined(separator: " "), flags: flags, token: token, allowEmpty: true
        ) { origin in
            var next = origin
            next.baseRefspec = refspec
            next.overrideCommit = nil
            next.imageDigest = nil
            return next
        } base: { sysroot, _ in
            // The remote is configured inside the transaction, under its lock (a dry run changes
            // nothing, so it needs the remote configured already).
            if let remoteURL, !flags.dryRun, let colon = refspec.firstIndex(of: ":") {
                _ = try configureRemote(sysroot, name: String(refspec[..<colon]), url: remoteURL)
            }
            guard let revision else { return try resolveBase(sysroot, refspec: refspec, pull: true, token: token) }
            if Self.isFullChecksum(revision) {
                try pullCommit(sysroot, refspec: refspec, checksum: revision, token: token)
            } else {
                _ = try resolveBase(sysroot, refspec: refspec, pull: true, token: token)
            }
            return try findCommit(sysroot, refspec: refspec, target: revision)
        } adjust: { origin, checksum in
            guard revision != nil else { return origin }
            var next = origin
            next.overrideCommit = checksum
            return next
        }
    }

    /// `rebase` onto an OCI image: pulled (by the pinned digest when there is one), its commit
    /// rebuilt exactly, the layering re-applied; the origin records the reference as given (a tag
    /// to follow, or a pinned digest to keep) and the digest deployed.
    func rebase(
        image: ImageReference, revision: String?, remoteURL: String?, flags: LayeringFlags, token: CancellationToken
    ) throws -> ChangeResult {
        // A revision for an image is the commit it must carry (the fleet driver's pin), not a
        // choice among commits: an image has no history.
        if let revision, !Self.isFullChecksum(revision) {
            throw EngineError(
                .invalidArgument, "an image has no revisions to choose from: pin one with IMAGE@sha256:DIGEST, or name the full commit it must carry")
        }
        guard remoteURL == nil else { throw EngineError(.invalidArgument, "--remote-url is for OSTree remotes, not images") }
        var pulled: ImageImporter.Pulled?
        return try relayer(.rebase, detail: image.description, flags: flags, token: token, allowEmpty: true) { origin in
            var next = origin
            // A pinned digest stays in the origin: `upgrade` then keeps that image (and refreshes
            // the layered packages) instead of following the tag, as rpm-ostree does.
            next.baseRefspec = image.description
            next.overrideCommit = nil
            next.imageDigest = nil
            return next
        } base: { sysroot, _ in
            let found = try pullImage(sysroot, image, required: revision, token: token)
            pulled = found
            return found.commit
        } adjust: { origin, _ in
            var next = origin
            next.imageDigest = pulled?.digest
            return next
        }
    }

    /// Whether `text` is a full 64-character lowercase commit checksum.
    public static func isFullChecksum(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Pulls one commit by checksum from the remote `refspec` names, unless it is already local.
    func pullCommit(_ sysroot: Sysroot, refspec: String, checksum: String, token: CancellationToken) throws {
        let repo = try sysroot.repo()
        guard (try? repo.commit(checksum)) == nil else { return }
        guard let colon = refspec.firstIndex(of: ":"), repo.remotes.contains(String(refspec[..<colon])) else {
            throw EngineError(.notFound, "commit \(checksum) is not in the repository and \(refspec) names no configured remote")
        }
        let remote = String(refspec[..<colon])
        progress.phase("Pulling \(checksum.prefix(12)) from \(remote)")
        do {
            try repo.pull(remote: remote, ref: checksum, cancellable: token.cancellable)
        } catch {
            throw EngineError.wrap(error, "pull \(checksum) from \(remote)")
        }
    }

    /// The shortest checksum prefix `deploy` takes.
    public static let minimumChecksumPrefix = 8

    /// The .deb an install item names: an upload (`sha256:HEX`, with the digest it must have) or a
    /// host path; nil for a package name.
    func localFile(_ item: String) throws -> (path: String, digest: String?)? {
        if let digest = try Operand.uploadDigest(in: item) {
            let path = uploads.path(digest)
            guard FileTree.exists(path) else {
                throw EngineError(.notFound, "no uploaded package \(item); upload it first (POST /v1/package-files)")
            }
            return (path, digest)
        }
        return Operand.isHostPath(item) ? (item, nil) : nil
    }

    /// Resolves a base refspec to a commit, pulling first when it names a remote.
    func resolveBase(_ sysroot: Sysroot, refspec: String, pull: Bool, token: CancellationToken) throws -> String {
        let repo = try sysroot.repo()
        if pull, let colon = refspec.firstIndex(of: ":"), repo.remotes.contains(String(refspec[..<colon])) {
            progress.phase("Pulling \(refspec)")
            do {
                try repo.pull(remote: String(refspec[..<colon]), ref: String(refspec[refspec.index(after: colon)...]), cancellable: token.cancellable)
            } catch {
                throw EngineError.wrap(error, "pull \(refspec)")
            }
        }
        guard let checksum = try? repo.resolve(refspec, allowMissing: true) else {
            throw EngineError(.notFound, "unknown ref: \(refspec)")
        }
        return checksum
    }

    /// Finds a commit in the history of `refspec` whose version or checksum (prefix) is `target`.
    func findCommit(_ sysroot: Sysroot, refspec: String, target: String) throws -> String {
        let repo = try sysroot.repo()
        var next = try? repo.resolve(refspec, allowMissing: true)
        let isChecksumPrefix = target.count >= Self.minimumChecksumPrefix && target.allSatisfy(\.isHexDigit) && target == target.lowercased()
        while let checksum = next, let commit = try? repo.commit(checksum) {
            if (isChecksumPrefix && checksum.hasPrefix(target)) || commit.string(Layout.Key.version) == target { return checksum }
            next = commit.parent
        }
        if target.count == 64, isChecksumPrefix, let commit = try? repo.commit(target) {
            guard commit.bool(Layout.Key.clientLayer) != true else {
                throw EngineError(.invalidArgument, "\(target) is a layered commit, not a base commit")
            }
            return commit.checksum
        }
        throw EngineError(.notFound, "no commit with version or checksum \(target) in the history of \(refspec)")
    }
}
