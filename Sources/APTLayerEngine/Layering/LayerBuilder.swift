import APTLayerModel
import Foundation
import Glibc
import OSTree

/// Builds a layered commit: base commit + requested packages, re-derived from scratch every time.
///
/// The steps follow docs/architecture.md: hardlink checkout → break hardlinks on what package tools
/// rewrite → usr/etc to etc → seed accounts and /var → apt resolves against the merge deployment's
/// sources → dpkg (in bwrap) unpacks and configures → audit → /var directories become tmpfiles.d
/// lines → new system accounts are recorded → etc back to usr/etc → commit with parent = base.
struct LayerBuilder {
    /// What to build.
    struct Request {
        var baseChecksum: String
        var requested: RequestedState
        /// The merge deployment's /etc (admin-edited sources and accounts), if there is one.
        var mergeEtc: String?
        var allowKernel: Bool
        /// The inputs hash of the current deployment: an equal hash means nothing to do.
        var currentInputsSHA256: String?
        var dryRun: Bool
        /// Update package lists even when they are fresh.
        var refreshMetadata: Bool
        /// The host's firmware enforces Secure Boot: unsigned and DKMS-built kernel modules are
        /// refused (``SecureBootModules``).
        var secureBoot = false
        /// A replacement the base already carries (same version or newer) is an error (the
        /// `override replace` that asks for it) rather than dropped (an upgrade or rebase).
        var refuseObsoleteReplacements = false
    }

    /// A finished build.
    struct Build {
        var checksum: String
        /// The packages of the new tree.
        var packages: [Package]
        /// Account lines (per file) created by maintainer scripts, to carry into the new /etc.
        var newAccounts: [String: [String]]
        /// The requested state as built: replacements the base already carries are dropped.
        var requested: RequestedState
        /// One line per dropped replacement, saying why.
        var notes: [String] = []
    }

    enum Outcome {
        case unchanged
        /// A dry run: the package set the build would produce.
        case planned([Package])
        case built(Build)
    }

    let repo: Repo
    let stateDirectory: String
    let token: CancellationToken
    let progress: any ProgressSink

    static let refusedPackagePrefixes = ["linux-image-", "grub-pc", "grub-efi", "grub2", "shim-signed", "systemd-boot"]

    func build(_ request: Request) throws -> Outcome {
        // A fixed path (builds are serialised by the sysroot lock): apt's package caches record
        // the paths of the status file and sources, so a stable path lets them stay valid.
        let temporary = "\(repo.path)/tmp/\(Layout.temporaryPrefix)build"
        OverlayTree.removeBuildDirectory(temporary)
        defer { OverlayTree.removeBuildDirectory(temporary) }
        let root = "\(temporary)/root"
        let work = "\(temporary)/work"
        try FileTree.makeDirectory(work)

        progress.phase("Checking out base \(request.baseChecksum.prefix(12))")
        // The base's kept checkout under an overlay when the kernel allows it (the build then costs
        // what it changes); otherwise a fresh hardlink checkout of the whole base, committed whole.
        let overlay: OverlayTree?
        let cache = DevInoCache()
        do {
            let lower = try BaseCheckouts(repo: repo, stateDirectory: stateDirectory).prepared(
                request.baseChecksum, cancellable: token.cancellable)
            overlay = OverlayTree.mount(lower: lower, upper: "\(temporary)/upper", scratch: "\(temporary)/overlay-work", at: root)
            if overlay == nil {
                try repo.checkoutHardlinks(request.baseChecksum, to: root, cache: cache, cancellable: token.cancellable)
            }
        } catch {
            throw EngineError.wrap(error, "check out base")
        }
        FaultPoint.hit("after-checkout")
        let basePackages = Package.installed(statusFile: FileTree.read("\(root)/\(Layout.dpkgDatabase)/status") ?? "")
        try validate(request.requested, basePackages: basePackages, architecture: AptSession.architecture(admindir: "\(root)/\(Layout.dpkgDatabase)"))
        var replacements = ReplacementCheck(base: basePackages, refuse: request.refuseObsoleteReplacements)
        var requested = try replacements.droppingObsolete(request.requested)
        try token.check()

        let seeded = try prepare(root: root, mergeEtc: request.mergeEtc, etcAtRoot: overlay != nil)
        let factory = Set(FileTree.walk("\(root)/var"))
        // The sources the new deployment will have (``AptSources``): the new base's, with the admin's changes.
        var etcApt = "\(root)/etc/apt"
        if let mergeEtc = request.mergeEtc {
            etcApt = "\(work)/etc-apt-merged"
            try AptSources.merge(
                mergeEtc: mergeEtc, mergeDefaults: "\((mergeEtc as NSString).deletingLastPathComponent)/usr/etc", newTree: "\(root)/etc", into: etcApt
            )
        }
        let apt = try AptSession(root: root, work: work, state: stateDirectory, etcApt: etcApt, token: token, progress: progress)
        try apt.update(force: request.refreshMetadata)

        if !requested.replacements.isEmpty {
            // A suite's version is known only from apt's plan: one that is not newer than the
            // base's is dropped (or refused) before anything is installed.
            progress.phase("Resolving replacements")
            requested = try replacements.droppingObsolete(requested, plan: try apt.plan(aptArguments(requested)))
        }
        var request = request
        request.requested = requested
        let arguments = aptArguments(requested)
        let planGuard = AptPlanGuard(
            refusedPrefixes: request.allowKernel ? [] : Self.refusedPackagePrefixes, allowedRemovals: request.requested.removals)
        // A dry run needs apt's plan and nothing else; a rebuild of the current request may be a
        // no-op, which only the plan can tell. Everything else resolves once, in the real install.
        if request.dryRun || request.currentInputsSHA256 != nil {
            progress.phase("Resolving packages")
            let plan = try apt.plan(arguments)
            FaultPoint.hit("after-plan")
            if let refusal = planGuard.refusal(of: plan) { throw refusal.error }
            if inputsSHA256(request, plan: plan) == request.currentInputsSHA256 { return .unchanged }
            if request.dryRun { return .planned(plan.applied(to: basePackages)) }
            progress.phase("Installing packages")
            try apt.install(arguments, expected: plan.installs.count + plan.removals.count, guard: planGuard)
        } else {
            progress.phase("Resolving and installing packages")
            try apt.install(arguments, expected: nil, guard: planGuard)
            FaultPoint.hit("after-plan")
        }
        try apt.finishAndAudit()
        if request.secureBoot,
            let refusal = try SecureBootModules.refusal(root: root, database: Layout.dpkgDatabase, base: basePackages, token: token)
        {
            throw refusal
        }
        FaultPoint.hit("after-install")
        try token.check()

        try collectVar(root: root, factory: factory)
        let accounts = try collectAccounts(root: root, seeded: seeded)
        try finish(root: root, moveEtc: overlay == nil)

        let packages = Package.installed(statusFile: FileTree.read("\(root)/\(Layout.dpkgDatabase)/status") ?? "")
        let inputs = inputsSHA256(request, plan: AptPlan(before: basePackages, after: packages))
        let base = try repo.commit(request.baseChecksum)
        var metadata = CommitMetadata()
        metadata.bools[Layout.Key.clientLayer] = true
        metadata.bools[Layout.Key.bootable] = true
        if let version = base.string(Layout.Key.version) { metadata.strings[Layout.Key.version] = version }
        if let linux = base.string(Layout.Key.linux) { metadata.strings[Layout.Key.linux] = linux }
        metadata.lists[Layout.Key.packages] = request.requested.packages
        metadata.lists[Layout.Key.localPackages] = request.requested.localPackages.map(\.recordForm)
        metadata.lists[Layout.Key.removedBasePackages] = request.requested.removals
        metadata.lists[Layout.Key.packageList] = packages.map(\.metadataForm)
        metadata.strings[Layout.Key.inputsSHA256] = inputs

        progress.phase("Committing")
        let subject = "apt-layer: " + (request.requested.packages + request.requested.localPackages.map(\.name)).joined(separator: " ")
        let checksum: String
        do {
            if let overlay {
                try overlay.unmount()
                let made = try overlay.moveEtcToUsr()
                checksum = try repo.writeCommit(
                    overlay: overlay.upper, onto: request.baseChecksum, baseMetadata: made, parent: request.baseChecksum, subject: subject,
                    metadata: metadata, cancellable: token.cancellable)
            } else {
                checksum = try repo.writeCommit(
                    directory: root, parent: request.baseChecksum, subject: subject, metadata: metadata, cache: cache,
                    cancellable: token.cancellable)
            }
        } catch {
            throw EngineError.wrap(error, "commit layered tree")
        }
        FaultPoint.hit("after-commit")
        return .built(Build(checksum: checksum, packages: packages, newAccounts: accounts, requested: requested, notes: replacements.notes))
    }

    private func validate(_ requested: RequestedState, basePackages: [Package], architecture: String) throws {
        let baseNames = Set(basePackages.map(\.name))
        for name in requested.replacedNames where !baseNames.contains(name) {
            throw EngineError(
                .invalidArgument, "package \(name) is not a base package: override replace replaces base packages (use install to layer it)")
        }
        for local in requested.localReplacements where local.architecture != "all" && local.architecture != architecture {
            throw EngineError(
                .badPackage, "replacement \(local.nameVersionArch) is for architecture \(local.architecture), this host's is \(architecture)")
        }
        for name in requested.packages where baseNames.contains(name) {
            throw EngineError(.invalidArgument, "package \(name) is already provided by the base image")
        }
        for name in requested.removals where !baseNames.contains(name) {
            throw EngineError(.notFound, "package \(name) is not in the base image")
        }
    }

    private func aptArguments(_ requested: RequestedState) -> [String] {
        let store = LocalPackages(stateDirectory: stateDirectory)
        // A replacement may be an older build than the version apt prefers (a patched local
        // build, a suite's pin); replacements older than the base's were dropped already.
        let downgrades = requested.replacements.isEmpty && requested.localReplacements.isEmpty ? [] : ["--allow-downgrades"]
        return downgrades + requested.packages + requested.removals.map { "\($0)-" } + requested.localPackages.map { store.path(of: $0) }
            + requested.replacements + requested.localReplacements.map { store.path(of: $0) }
    }

    private func inputsSHA256(_ request: Request, plan: AptPlan) -> String {
        var lines = ["base \(request.baseChecksum)", "allow-kernel \(request.allowKernel)"]
        lines += request.requested.packages.map { "pkg \($0)" }
        lines += request.requested.localPackages.map { "local \($0.recordForm)" }
        lines += request.requested.removals.map { "remove \($0)" }
        lines += request.requested.replacements.map { "replace \($0)" }
        lines += request.requested.localReplacements.map { "replace-local \($0.recordForm)" }
        lines += plan.canonicalLines
        return SHA256.hex(lines.joined(separator: "\n"))
    }

    /// Breaks hardlinks and moves usr/etc to etc (unless `etcAtRoot`: an overlay over a prepared
    /// checkout needs neither), seeds accounts and /var, installs policy-rc.d.
    /// Returns the account files as seeded (to tell script-created accounts apart later).
    private func prepare(root: String, mergeEtc: String?, etcAtRoot: Bool) throws -> [String: (base: String, seeded: String)] {
        progress.phase("Preparing tree")
        if !etcAtRoot {
            for path in [Layout.dpkgDatabase, Layout.debconfCache, "usr/etc"] {
                try FileTree.breakHardlinks(under: "\(root)/\(path)")
            }
            guard rename("\(root)/usr/etc", "\(root)/etc") == 0 else { throw FileTree.posixError("move usr/etc to etc") }
        }

        var accounts: [String: (base: String, seeded: String)] = [:]
        for name in SystemUsers.files {
            let path = "\(root)/etc/\(name)"
            let base = FileTree.read(path) ?? ""
            var seeded = base
            if let mergeEtc, let local = FileTree.read("\(mergeEtc)/\(name)") {
                seeded = local
                if FileTree.exists(path) { try FileTree.replaceContents(path, local) }
            }
            accounts[name] = (base, seeded)
        }

        FileTree.remove("\(root)/var")
        if FileTree.isDirectory("\(root)/\(Layout.factoryVar)") {
            try FileTree.copy("\(root)/\(Layout.factoryVar)", to: "\(root)/var")
        } else {
            try FileTree.makeDirectory("\(root)/var")
        }
        for dir in ["proc", "dev", "run", "tmp"] { try FileTree.makeDirectory("\(root)/\(dir)") }
        let policy = "\(root)/usr/sbin/policy-rc.d"
        if FileTree.exists(policy) { rename(policy, policy + ".apt-layer-saved") }
        try FileTree.makeDirectory("\(root)/usr/sbin")
        try FileTree.write(policy, "#!/bin/sh\n# apt-layer: no services start while layering.\nexit 101\n", mode: 0o755)
        return accounts
    }

    /// New directories under /var become tmpfiles.d lines; other new /var content is dropped with a warning.
    private func collectVar(root: String, factory: Set<String>) throws {
        progress.phase("Collecting /var")
        var lines = ["# Generated by apt-layer: directories that layered packages created under /var."]
        var dropped: [String] = []
        let accounts = FileTree.read("\(root)/etc/passwd") ?? ""
        let groups = FileTree.read("\(root)/etc/group") ?? ""
        func name(_ id: UInt32, in table: String) -> String {
            table.split(separator: "\n").first {
                $0.split(separator: ":", omittingEmptySubsequences: false).dropFirst(2).first == Substring(String(id))
            }?
            .split(separator: ":").first.map(String.init) ?? String(id)
        }
        for relative in FileTree.walk("\(root)/var") where !factory.contains(relative) {
            guard let info = FileTree.lstatInfo("\(root)/var/\(relative)") else { continue }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                let mode = String(info.st_mode & 0o7777, radix: 8)
                lines.append(
                    "d /var/\(relative) \(String(repeating: "0", count: max(0, 4 - mode.count)))\(mode) \(name(info.st_uid, in: accounts)) \(name(info.st_gid, in: groups)) - -"
                )
            } else if !relative.hasPrefix("log/") && !relative.hasPrefix("cache/") && !relative.hasPrefix("lib/apt/") {
                dropped.append("/var/\(relative)")
            }
        }
        if !dropped.isEmpty {
            let shown = dropped.prefix(5).joined(separator: ", ")
            progress.message(
                "warning: dropping package content under /var (only directories are kept): \(shown)\(dropped.count > 5 ? " and \(dropped.count - 5) more" : "")"
            )
        }
        if lines.count > 1 {
            try FileTree.makeDirectory("\(root)/usr/lib/tmpfiles.d")
            try FileTree.write("\(root)/\(Layout.autovarTmpfiles)", lines.joined(separator: "\n") + "\n")
        }
        FileTree.remove("\(root)/var")
        try FileTree.makeDirectory("\(root)/var")
    }

    /// Keeps the base account files plus the accounts scripts created; returns those new lines.
    private func collectAccounts(root: String, seeded: [String: (base: String, seeded: String)]) throws -> [String: [String]] {
        var added: [String: [String]] = [:]
        for name in SystemUsers.files {
            let path = "\(root)/etc/\(name)"
            guard let files = seeded[name], let now = FileTree.read(path) else { continue }
            let new = SystemUsers.added(before: files.seeded, after: now)
            added[name] = new
            try FileTree.replaceContents(path, SystemUsers.appending(new, to: files.base))
        }
        return added
    }

    /// Restores policy-rc.d and moves etc back to usr/etc (an overlay's commit does that move).
    private func finish(root: String, moveEtc: Bool) throws {
        let policy = "\(root)/usr/sbin/policy-rc.d"
        unlink(policy)
        if FileTree.exists(policy + ".apt-layer-saved") { rename(policy + ".apt-layer-saved", policy) }
        for name in ["lock", "lock-frontend"] { unlink("\(root)/\(Layout.dpkgDatabase)/\(name)") }
        if moveEtc {
            guard rename("\(root)/etc", "\(root)/usr/etc") == 0 else { throw FileTree.posixError("move etc to usr/etc") }
        }
    }
}
