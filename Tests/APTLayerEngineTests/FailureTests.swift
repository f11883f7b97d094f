import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// Every bad input ends with a one-line error, the default deployment and requested state unchanged,
/// and no temporary tree left behind.
@Suite("Bad input changes nothing", .asRoot, .offPool)
struct FailureTests {
    enum Input: String, CaseIterable, Sendable {
        case unknownPackage, unsatisfiable, corruptDeb, escapingDeb, failingPostinst, fileConflict, kernelPackage, kernelDependency, implicitRemoval,
            badName
    }

    @Test(arguments: Input.allCases)
    func failsCleanly(_ input: Input) throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-lib"])
        let before = try bed.status
        let items: [String]
        let kind: EngineError.Kind
        let words: String
        switch input {
        case .unknownPackage: (items, kind, words) = (["no-such-package"], .notFound, "unknown package: no-such-package")
        case .unsatisfiable: (items, kind, words) = (["fixture-broken"], .unsatisfiable, "fixture-missing")
        case .corruptDeb: (items, kind, words) = (["\(bed.bad)/corrupt.deb"], .badPackage, "corrupt package file")
        case .escapingDeb: (items, kind, words) = (["\(bed.bad)/escape.deb"], .badPackage, "escapes the root")
        case .failingPostinst: (items, kind, words) = (["fixture-failing"], .packageFailed, "post-installation script")
        case .fileConflict: (items, kind, words) = (["fixture-conflict"], .packageFailed, "trying to overwrite '/usr/share/fixture-base/README'")
        case .kernelPackage: (items, kind, words) = (["linux-image-6.1.0-fixture"], .refused, "--allow-kernel")
        case .kernelDependency: (items, kind, words) = (["fixture-kernel-dep"], .refused, "package linux-image-6.1.0-fixture (use --allow-kernel)")
        case .implicitRemoval: (items, kind, words) = (["fixture-replacer"], .unsatisfiable, "would also remove fixture-removable")
        case .badName: (items, kind, words) = (["Bad_Name!"], .invalidArgument, "invalid package name")
        }
        let error = try #require(throws: EngineError.self) { try bed.engine().install(items) }
        #expect(error.kind == kind)
        #expect(error.message.contains(words))
        #expect(!error.message.contains("\n"))
        #expect(try bed.status == before)
        #expect(bed.leftovers.isEmpty)
        try Shell.run("ostree fsck --repo=\(bed.sysroot)/ostree/repo -q")

        // The CLI says it in one line on stderr and exits 1.
        let (code, output) = try Shell.status(
            "\(Paths.cli) install -q --sysroot \(bed.sysroot) \(items.map(Shell.quote).joined(separator: " ")) 2>&1 >/dev/null",
            environment: TestBed.environment)
        #expect(code == 1)
        #expect(output.split(separator: "\n").count == 1)
        #expect(output.hasPrefix("error: "))
    }

    /// The tree's own apt hooks never run on the host (Debian's 70debconf would run
    /// dpkg-preconfigure there, Ubuntu's needrestart restart its services): not for a refused
    /// plan, and not for an accepted one; the plan guard is the build's only hook.
    @Test func aRefusedPlanReachesNoOtherAptHook() throws {
        let bed = try TestBed()
        let marker = "\(bed.sysroot)/../hook-ran"
        try "DPkg::Pre-Install-Pkgs { \"touch \(marker)\"; };\nDPkg::Post-Invoke { \"touch \(marker)\"; };\n".write(
            toFile: try bed.deploymentDirectory() + "/etc/apt/apt.conf.d/99record", atomically: true, encoding: .utf8)
        let error = try #require(throws: EngineError.self) { try bed.engine().install(["fixture-kernel-dep"]) }
        #expect(error.kind == .refused)
        #expect(!FileManager.default.fileExists(atPath: marker))
        _ = try bed.engine().install(["fixture-lib"])
        #expect(try bed.packageNames().contains("fixture-lib"))
        #expect(!FileManager.default.fileExists(atPath: marker), "a hook of the tree ran on the host")
    }

    @Test func noSpaceLeftFailsCleanly() throws {
        let bed = try TestBed(sysrootSize: "40M")
        let big = "\(bed.fixtures)/big"
        try Shell.run(
            """
            mkdir -p \(big)/DEBIAN \(big)/usr/share/fixture-big && head -c 48M /dev/urandom > \(big)/usr/share/fixture-big/blob &&
            printf 'Package: fixture-big\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@localhost>\\nDescription: big\\n' > \(big)/DEBIAN/control &&
            dpkg-deb --root-owner-group -Znone --build \(big) \(bed.fixtures)/fixture-big.deb >/dev/null
            """)
        let before = try bed.status
        let error = try #require(throws: EngineError.self) { try bed.engine().install(["\(bed.fixtures)/fixture-big.deb"]) }
        #expect(error.message.contains("No space left on device") || error.message.contains("no space left on device"))
        #expect(try bed.status == before)
        #expect(bed.leftovers.isEmpty)
    }

    @Test func cancelMidDpkgLeavesNothing() async throws {
        let bed = try TestBed()
        let before = try bed.status
        let engine = bed.engine()
        let token = CancellationToken()
        let task = Task {
            try await Engine.run({ token in try engine.install(["fixture-slow"], token: token) }, token: token)
        }
        // Wait until dpkg is running the slow postinst, then cancel.
        try await bed.waitForConfigure()
        let started = ContinuousClock.now
        task.cancel()
        let outcome = await task.result
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(try bed.status == before)
        #expect(bed.leftovers.isEmpty)
        #expect(try Shell.status("pgrep -f -- \(bed.configurePattern)").0 != 0)
        try Shell.run("ostree fsck --repo=\(bed.sysroot)/ostree/repo -q")
    }

    @Test func cliSigintCancels() throws {
        let bed = try TestBed()
        let before = try bed.status
        let (code, output) = try Shell.status(
            """
            \(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-slow 2>&1 & pid=$!
            for i in $(seq 200); do pgrep -f -- \(bed.configurePattern) >/dev/null && break; sleep 0.1; done
            kill -INT $pid; wait $pid
            """, environment: TestBed.environment)
        #expect(code == 1)
        #expect(output.contains("error: cancelled"))
        #expect(try bed.status == before)
        #expect(bed.leftovers.isEmpty)
    }

    @Test func secondMutationIsBusy() async throws {
        let bed = try TestBed()
        let engine = bed.engine()
        let token = CancellationToken()
        let first = Task { try await Engine.run({ try engine.install(["fixture-slow"], token: $0) }, token: token) }
        try await bed.waitForConfigure()
        let error = try #require(throws: EngineError.self) { try bed.engine().install(["fixture-app"]) }
        #expect(error.kind == .busy)
        #expect(error.message.hasPrefix("busy: install started at "))
        #expect(error.message.contains("by pid \(getpid())"))
        first.cancel()
        _ = await first.result
        #expect(try bed.engine().install(["fixture-app"]).changed)
    }

    /// A killed build's overlay is found and detached however long the mount table is (procfs
    /// reports size 0; a reader that trusted one 4 KiB read missed it with many mounts around).
    @Test func aKilledBuildsMountIsDetachedAmongManyMounts() throws {
        let dir = try Shell.run("mktemp -d /tmp/apt-layer-mounts.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Shell.run("for m in \(dir)/*/ \(dir)/build/root; do umount -l $m 2>/dev/null; done; rm -rf \(dir)") }
        try Shell.run(
            "for i in $(seq 80); do mkdir -p \(dir)/padding-with-a-long-name-$i && mount -t tmpfs padding \(dir)/padding-with-a-long-name-$i; done")
        try Shell.run("mkdir -p \(dir)/build/root && mount -t tmpfs build \(dir)/build/root")
        #expect(try Shell.run("cat /proc/self/mountinfo").utf8.count > 8192)
        OverlayTree.unmountAll(under: "\(dir)/build")
        #expect(try Shell.status("mountpoint -q \(dir)/build/root").0 != 0)
    }

    @Test func leftoversOfAKilledRunAreSwept() throws {
        let bed = try TestBed()
        try Shell.run("mkdir -p \(bed.sysroot)/ostree/repo/tmp/apt-layer-999-1/root/usr")
        #expect(!bed.leftovers.isEmpty)
        _ = try bed.engine().install(["fixture-app"])
        #expect(bed.leftovers.isEmpty)
    }

    @Test func refusesAHostThatIsNotOSTreeBooted() throws {
        let error = try #require(throws: EngineError.self) { try Engine(options: .init(sysroot: "/")).install(["fixture-app"]) }
        #expect(error.kind == .refused || error.message.contains("not an OSTree sysroot"))
        #expect(throws: EngineError.self) { try Engine(options: .init(sysroot: "/")).initialize(osname: "x") }
    }
}
