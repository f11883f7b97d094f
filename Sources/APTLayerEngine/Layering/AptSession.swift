import APTLayerModel
import Foundation
import Glibc
import OSTree

/// apt on the host, pointed at a checked-out tree: its status file, the merge deployment's sources,
/// and a dpkg that runs inside bubblewrap (maintainer scripts are chrooted into the tree there,
/// with the network unshared and no view of the host's /etc or /var).
struct AptSession {
    let root: String
    let work: String
    let state: String
    let token: CancellationToken
    let progress: any ProgressSink
    /// The tree's native architecture (from its dpkg database, else the host's), read once.
    let architecture: String

    var configPath: String { "\(work)/apt.conf" }
    var dpkgWrapper: String { "\(work)/dpkg" }
    /// The plan guard's hook (``AptPlanGuard``): listed first among apt's Pre-Install-Pkgs hooks.
    var planCheck: String { "\(work)/plan-check" }
    var admindir: String { "\(root)/\(Layout.dpkgDatabase)" }

    /// Writes the private apt configuration and the bwrap dpkg wrapper.
    /// - Parameter etcApt: the /etc/apt whose sources and keys count (the merge deployment's).
    init(root: String, work: String, state: String, etcApt: String, token: CancellationToken, progress: any ProgressSink) throws {
        self.root = root
        self.work = work
        self.state = state
        self.token = token
        self.progress = progress
        for dir in ["\(state)/apt/lists/partial", "\(state)/apt/archives/partial", "\(work)/apt-state", "\(work)/log", "\(work)/tmp"] {
            try FileTree.makeDirectory(dir)
        }
        FileTree.remove("\(work)/etc-apt")
        if FileTree.isDirectory(etcApt) {
            try FileTree.copy(etcApt, to: "\(work)/etc-apt")
        } else {
            try FileTree.makeDirectory("\(work)/etc-apt")
        }
        // apt rebuilds its caches whenever a sources file is newer than them; deployment /etc files
        // carry deploy-time mtimes. Source changes are caught by the fingerprint in update(force:)
        // and list changes by apt itself, so old mtimes here are safe and keep the caches valid.
        try Self.silenceTreeHooks(etcApt: "\(work)/etc-apt", planCheck: "\(work)/plan-check")
        try Subprocess.check(["find", "\(work)/etc-apt", "-exec", "touch", "-h", "-d", "@1", "{}", "+"])
        architecture = Self.architecture(admindir: "\(root)/\(Layout.dpkgDatabase)")
        let config = """
            Dir "/";
            Dir::State "\(work)/apt-state/";
            Dir::State::Lists "\(state)/apt/lists/";
            Dir::State::status "\(admindir)/status";
            Dir::Cache "\(state)/apt/";
            Dir::Cache::archives "\(state)/apt/archives/";
            Dir::Cache::pkgcache "\(work)/pkgcache.bin";
            Dir::Cache::srcpkgcache "\(state)/apt/srcpkgcache.bin";
            Dir::Etc "\(work)/etc-apt/";
            Dir::Log "\(work)/log/";
            Dir::Bin::dpkg "\(dpkgWrapper)";
            APT::Architecture "\(architecture)";
            APT::Architectures { \(Self.architectures(admindir: admindir, native: architecture).map { "\"\($0)\";" }.joined(separator: " ")) };
            APT::Install-Recommends "false";
            APT::Sandbox::User "root";
            APT::Keep-Fds { "3"; };
            Acquire::Languages "none";
            Dpkg::Use-Pty "false";
            DPkg::Tools::Options::\(planCheck)::Version "3";
            DPkg::Options { "--root=\(root)"; "--admindir=\(admindir)"; "--log=\(work)/dpkg.log"; "--force-confdef"; "--force-confold"; "--force-unsafe-io"; };

            """
        try FileTree.write(configPath, config)
        let wrapper = """
            #!/bin/sh
            # dpkg for one apt-layer build: runs in bubblewrap; maintainer scripts are chrooted into the tree.
            # .deb arguments from file: sources live outside the build: bind their directories read-only.
            binds=""
            for a in "$@"; do
              case "$a" in /*.deb) d=$(dirname "$a"); binds="$binds --ro-bind $d $d" ;; esac
            done
            exec bwrap --die-with-parent --unshare-pid --unshare-ipc --unshare-uts --unshare-net \\
              --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/sbin /sbin \\
              --symlink usr/lib /lib --symlink usr/lib64 /lib64 \\
              --dir /etc --ro-bind-try '\(root)/etc/passwd' /etc/passwd --ro-bind-try '\(root)/etc/group' /etc/group \\
              --proc /proc --dev /dev --tmpfs /tmp --tmpfs /run \\
              --bind '\(root)' '\(root)' --proc '\(root)/proc' --dev '\(root)/dev' \\
              --tmpfs '\(root)/run' --tmpfs '\(root)/tmp' \\
              --bind '\(work)' '\(work)' --ro-bind '\(state)' '\(state)' \\
              --unsetenv TMPDIR --setenv DEBIAN_FRONTEND noninteractive --setenv PATH /usr/sbin:/usr/bin:/sbin:/bin \\
              $binds /usr/bin/dpkg "$@"

            """
        try FileTree.write(dpkgWrapper, wrapper, mode: 0o755)
    }

    /// The apt hooks a build runs, after the tree's own configuration: only the plan guard.
    ///
    /// apt runs `DPkg::Pre-Invoke`/`Post-Invoke`/`Pre-Install-Pkgs` and `APT::Update::*` hooks on
    /// the *host*, outside the dpkg sandbox: the tree's own (Ubuntu's needrestart and snapd
    /// hooks, apt-news and ESM hooks, Debian's debconf preconfiguration, apt-listchanges) would
    /// restart services of the running system, touch its state, or read the host's debconf
    /// database, for packages that are not installed on it until the next boot. apt reads
    /// `Dir::Etc::main` after every `apt.conf.d` part, so the tree's `apt.conf` followed by these
    /// `#clear`s is the last word.
    static let silencedHooks = [
        "DPkg::Pre-Invoke", "DPkg::Post-Invoke", "DPkg::Pre-Install-Pkgs", "APT::Update::Pre-Invoke", "APT::Update::Post-Invoke",
        "APT::Update::Post-Invoke-Success", "AptCli::Hooks", "Binary::apt::AptCli::Hooks",
    ]

    static func silenceTreeHooks(etcApt: String, planCheck: String) throws {
        var text = FileTree.read("\(etcApt)/apt.conf") ?? ""
        if !text.isEmpty, !text.hasSuffix("\n") { text += "\n" }
        text += "// apt-layer: hooks of the tree's configuration do not run on the host during a build.\n"
        text += silencedHooks.map { "#clear \($0);\n" }.joined()
        text += "DPkg::Pre-Install-Pkgs { \"\(planCheck)\"; };\n"
        try FileTree.write("\(etcApt)/apt.conf", text)
    }

    /// Native plus foreign architectures from the tree's dpkg database, so apt need not ask dpkg.
    static func architectures(admindir: String, native: String) -> [String] {
        let listed = (FileTree.read("\(admindir)/arch") ?? "").split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        return [native] + listed.filter { $0 != native }
    }

    static func architecture(admindir: String) -> String {
        if let arch = FileTree.read("\(admindir)/arch")?.split(separator: "\n").first { return String(arch) }
        return (try? Subprocess.check(["dpkg", "--print-architecture"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "amd64"
    }

    var environment: [String: String] {
        // apt links the .debs of one dpkg call into a directory under TMPDIR: keep it inside the
        // build's work directory, which the dpkg sandbox can see.
        ["APT_CONFIG": configPath, "DEBIAN_FRONTEND": "noninteractive", "TMPDIR": "\(work)/tmp"]
    }

    /// How long downloaded package lists count as fresh when the sources did not change.
    static let listsMaxAge: TimeInterval = 3600

    /// `apt-get update` against the tree's sources, unless the lists are fresh: same sources as
    /// the last update, less than ``listsMaxAge`` old, and no `file:` source (those are cheap and
    /// change under us). `force` always updates (`upgrade`, `--refresh`).
    func update(force: Bool) throws {
        let stamp = "\(state)/apt/lists.stamp"
        let fingerprint = sourcesFingerprint()
        if !force, !fingerprint.text.contains("file:"), FileTree.read(stamp) == fingerprint.hash,
            let modified = (try? FileManager.default.attributesOfItem(atPath: stamp))?[.modificationDate] as? Date,
            Date().timeIntervalSince(modified) < Self.listsMaxAge
        {
            progress.phase("Package lists are fresh (updated \(Int(Date().timeIntervalSince(modified)))s ago)")
            return
        }
        progress.phase("Updating package lists")
        unlink(stamp)
        let result = try Subprocess.run(["apt-get", "-q", "update"], environment: environment, token: token)
        let errors = result.output.split(separator: "\n").filter { $0.hasPrefix("E:") || $0.hasPrefix("Err:") }
        guard result.succeeded, errors.isEmpty else {
            throw EngineError(
                .system,
                result.signalDeath("apt-get update") ?? "apt-get update failed: \(errors.first.map(String.init) ?? "exit status \(result.status)")")
        }
        try FileTree.write(stamp, fingerprint.hash)
    }

    /// The sources and keys apt uses, as text and as a hash.
    private func sourcesFingerprint() -> (text: String, hash: String) {
        let etc = "\(work)/etc-apt"
        var parts = [FileTree.read("\(etc)/sources.list") ?? ""]
        for dir in ["sources.list.d", "trusted.gpg.d", "preferences.d"] {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: "\(etc)/\(dir)")) ?? []).sorted() {
                parts.append("\(dir)/\(name)\n" + (FileTree.read("\(etc)/\(dir)/\(name)") ?? ""))
            }
        }
        let text = parts.joined(separator: "\n")
        return (text, SHA256.hex(text + "\n" + architecture))
    }

    /// What apt would do for `arguments` (names, `name-` removals, .deb paths).
    func plan(_ arguments: [String]) throws -> AptPlan {
        // apt's status cache (lists + this tree's status file) takes most of a resolution to build.
        // Builds of the same base start from the same status file at the same path, so the cache
        // apt built last time for it is still valid: seed it, and keep the fresh one afterwards.
        let seed = "\(state)/apt/pkgcache-\(SHA256.hex(FileTree.read("\(admindir)/status") ?? "").prefix(16)).bin"
        if FileTree.exists(seed) { try? FileTree.copy(seed, to: "\(work)/pkgcache.bin") }
        let result = try Subprocess.run(["apt-get", "-s", "-q", "install"] + arguments, environment: environment, token: token)
        guard result.succeeded else { throw AptFailure.error(result, program: "apt-get") }
        if FileTree.exists("\(work)/pkgcache.bin") {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(state)/apt")) ?? []
            where name.hasPrefix("pkgcache-") && "\(state)/apt/\(name)" != seed {
                unlink("\(state)/apt/\(name)")
            }
            unlink(seed)
            try? FileTree.copy("\(work)/pkgcache.bin", to: seed)
        }
        return AptPlan(simulationOutput: result.output)
    }

    /// Installs for real, reporting each package as dpkg unpacks and configures it. With a guard,
    /// this one apt run also resolves: the guard's hook checks apt's final plan before dpkg runs,
    /// and a refusal is thrown as the engine error it names.
    /// - Parameter expected: the number of packages a simulation planned, or nil to take it from
    ///   apt's own summary line (`N upgraded, N newly installed, N to remove …`).
    func install(_ arguments: [String], expected: Int?, guard planGuard: AptPlanGuard?) throws {
        // The guard is the only Pre-Install-Pkgs hook (``silenceTreeHooks``): a refused plan
        // reaches nothing else.
        let record = "\(work)/plan-refused"
        unlink(record)
        let passThrough = "#!/bin/sh\n# apt-layer: no plan guard for this run.\nwhile read -r _; do :; done\nexit 0\n"
        try FileTree.write(planCheck, planGuard?.script(record: record) ?? passThrough, mode: 0o755)
        var done = 0
        var total = max((expected ?? 0) * 2, 1)
        let result = try Subprocess.run(
            ["apt-get", "-y", "-q", "install"] + arguments, environment: environment, token: token, killOrphans: true
        ) { line in
            if expected == nil, let planned = Self.plannedCount(summaryLine: line) { total = max(planned * 2, 1) }
            for prefix in ["Unpacking ", "Setting up ", "Removing "] where line.hasPrefix(prefix) {
                done += 1
                let item = line.dropFirst(prefix.count).split(separator: " ").first.map(String.init) ?? ""
                progress.packages(done: min(done, total), total: total, item: "\(prefix.trimmingCharacters(in: .whitespaces)) \(item)")
            }
        }
        if let refusal = AptPlanGuard.refusal(recordedAt: record) { throw refusal.error }
        guard result.succeeded else { throw AptFailure.error(result, program: "apt-get") }
    }

    /// The packages apt's summary line says it will change, if `line` is that line.
    static func plannedCount(summaryLine line: String) -> Int? {
        guard line.contains(" upgraded, "), line.contains(" newly installed, ") else { return nil }
        let numbers = line.split(separator: ",").prefix(3).compactMap { Int($0.trimmingCharacters(in: .whitespaces).prefix { $0.isNumber }) }
        return numbers.count == 3 ? numbers.reduce(0, +) : nil
    }

    /// Runs deferred triggers and configuration, then fails if `dpkg --audit` reports anything.
    func finishAndAudit() throws {
        progress.phase("Running triggers")
        let dpkg = [dpkgWrapper, "--root=\(root)", "--admindir=\(admindir)", "--log=\(work)/dpkg.log"]
        let configure = try Subprocess.run(dpkg + ["--configure", "-a"], environment: environment, token: token, killOrphans: true)
        guard configure.succeeded else { throw AptFailure.error(configure, program: "dpkg") }
        let audit = try Subprocess.run(dpkg + ["--audit"], environment: environment, token: token)
        let report = audit.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard audit.succeeded, report.isEmpty else {
            throw EngineError(.packageFailed, "dpkg --audit is not clean: \(report.split(separator: "\n").first ?? "exit status \(audit.status)")")
        }
    }
}
