import APTLayerEngine
import APTLayerModel
import Foundation
import OSTree
import Testing

/// One test's world on tmpfs: fixture .debs and a flat repository on one tmpfs, a sysroot on
/// another (so a test can give the sysroot a small size), a base committed on `test/base` and
/// deployed. Both mounts are lazily unmounted when the bed is released.
public final class TestBed: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; only paths are shared.
    public let root: String
    public let fixtures: String
    public let sysroot: String
    public var debs: String { "\(fixtures)/fx/debs" }
    public var repo: String { "\(fixtures)/fx/repo" }
    public var bad: String { "\(fixtures)/fx/bad" }
    public let baseChecksum: String

    public static let environment = ["OSTREE_SYSROOT_DEBUG": "mutable-deployments"]

    /// - Parameters:
    ///   - sysrootSize: tmpfs size for the sysroot (e.g. "512M").
    ///   - deploy: rebase onto the base so there is a first deployment.
    public init(sysrootSize: String = "1G", deploy: Bool = true) throws {
        setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1)
        root = try Shell.run("mktemp -d /tmp/apt-layer-test.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        fixtures = "\(root)/fixtures"
        sysroot = "\(root)/sysroot"
        try Shell.run(
            "mkdir -p \(fixtures) \(sysroot) && mount -t tmpfs -o size=512M tmpfs \(fixtures) && mount -t tmpfs -o size=\(sysrootSize) tmpfs \(sysroot)"
        )
        // A bed that fails here is never released (deinit does not run for an initializer that
        // throws before every property is set): its mounts go before the error does.
        do {
            // The fixture .debs, repository and base tree, built once per test process and copied;
            // the base's apt source then names this bed's repository (make-rootfs.sh writes the line).
            try Shell.run(
                "cp -a \(try Self.builtFixtures.get())/. \(fixtures)/ && echo 'deb [trusted=yes] file:\(fixtures)/fx/repo ./' > \(fixtures)/rootfs/etc/apt/sources.list.d/fixture.list"
            )
            let engine = Engine(options: .init(sysroot: sysroot))
            try engine.initialize(osname: "debian")
            baseChecksum = try engine.composeRootfs(
                "\(fixtures)/rootfs", repo: nil, options: .init(ref: "test/base", version: "1.0", stubKernel: true))
            if deploy { _ = try engine.rebase("test/base") }
        } catch {
            _ = try? Shell.run("umount -l \(sysroot); umount -l \(fixtures); rm -rf \(root)")
            throw error
        }
    }

    /// `fx/` (debs, repository, bad packages) and `rootfs/` as the builders make them, in a
    /// directory of this process (removed at exit); each bed copies it.
    static let builtFixtures: Result<String, any Error> = Result {
        let dir = "/tmp/apt-layer-fixtures.\(getpid())"
        try Shell.run("rm -rf \(dir) && mkdir -p \(dir)")
        atexit { _ = try? Shell.run("rm -rf /tmp/apt-layer-fixtures.\(getpid())") }
        try Shell.run("\(Paths.fixtures)/builders/make-debs.sh \(dir)/fx")
        try Shell.run("\(Paths.fixtures)/builders/make-rootfs.sh \(dir)/rootfs \(dir)/fx/debs \(dir)/fx/repo 1")
        return dir
    }

    deinit {
        _ = try? Shell.run("umount -l \(sysroot); umount -l \(fixtures); rm -rf \(root)")
    }

    /// An engine on this bed's sysroot.
    public func engine(wait: Bool = false) -> Engine { Engine(options: .init(sysroot: sysroot, osname: "debian", waitForLock: wait)) }

    /// Commits a new base version on `ref` (`note` shows up in /etc/base-note).
    @discardableResult
    public func composeBase(ref: String = "test/base", version: String, note: String) throws -> String {
        let dir = "\(fixtures)/rootfs-\(version)"
        try Shell.run("rm -rf \(dir) && \(Paths.fixtures)/builders/make-rootfs.sh \(dir) \(debs) \(repo) \(note)")
        return try engine().composeRootfs(dir, repo: nil, options: .init(ref: ref, version: version, stubKernel: true))
    }

    /// Adds a .deb to the flat repository and reindexes it.
    public func publish(_ deb: String) throws {
        try Shell.run("cp \(debs)/\(deb) \(repo)/ && \(Paths.fixtures)/builders/index-repo.sh \(repo)")
    }

    public var status: StatusDocument { get throws { try engine().status() } }

    /// The default deployment's checksum.
    public var defaultChecksum: String { get throws { try #require(try status.deployments.first).checksum } }

    /// The absolute directory of deployment `index`.
    public func deploymentDirectory(_ index: Int = 0) throws -> String {
        let d = try #require(try status.deployments.dropFirst(index).first)
        return "\(sysroot)/ostree/deploy/\(d.osname)/deploy/\(d.checksum).\(d.serial)"
    }

    /// Names of installed packages in deployment `index`.
    public func packageNames(_ index: Int = 0) throws -> [String] { try engine().packages(deployment: index).map(\.name) }

    /// Temporary trees left in the repository.
    public var leftovers: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(sysroot)/ostree/repo/tmp")) ?? []).filter { $0.hasPrefix("apt-layer-") }
    }

    /// A `pgrep -f` pattern matching dpkg configuring packages in this bed's build.
    public var configurePattern: String { Shell.quote("[-]-root=\(sysroot)/.*[-]-configure") }

    /// Waits (up to 300 s: with the realistic tier and a dozen agents in parallel on two cores,
    /// apt alone has been seen to take over 30 s, and in the agent batch an install of fixture-slow
    /// has reached its configure step only after more than 120 s, cause not found yet) until dpkg
    /// runs maintainer scripts for this bed.
    public func waitForConfigure() async throws {
        var last = (Int32(0), "")
        // Either the engine's own `dpkg --root=… --configure`, or a maintainer script configuring
        // a package under apt-get's dpkg for this bed (apt sometimes configures a package itself;
        // its dpkg's command line does not carry the pattern): a `*.postinst configure` whose
        // ancestors name this sysroot.
        let script = """
            pgrep -f -- \(configurePattern) >/dev/null && exit 0
            for p in $(pgrep -f -- '[.]postinst configure'); do
              q=$p
              while [ "${q:-1}" -gt 1 ]; do
                grep -qaF -- \(Shell.quote(sysroot)) /proc/$q/cmdline 2>/dev/null && exit 0
                q=$(sed -n 's/^[0-9]* ([^)]*) [A-Za-z] \\([0-9]*\\).*/\\1/p' /proc/$q/stat 2>/dev/null)
              done
            done
            exit 1
            """
        for _ in 0..<3000 {
            last = try Shell.status(script)
            if last.0 == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let ps = (try? Shell.run("ps -eo pid,args | grep -F -- '\(sysroot)' | cut -c1-400")) ?? ""
        Issue.record("dpkg never reached --configure (pgrep \(last.0): \(last.1))\n\(ps)")
    }

    public func repoHandle() throws -> Repo { try Repo(path: "\(sysroot)/ostree/repo") }
}
