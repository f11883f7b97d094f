import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// The space preflight (Engine+SpacePreflight.swift): a `/boot` without room for a new kernel and
/// initramfs is a one-line refusal before anything is built or deployed, not a failed
/// finalization at shutdown.
@Suite("space preflight", .asRoot, .offPool)
struct SpacePreflightTests {
    /// Gives the bed's sysroot a `/boot` of its own (a real host's separate boot partition), `size`
    /// big, holding what it held.
    static func separateBoot(_ bed: TestBed, size: String) throws {
        try Shell.run(
            """
            cp -a \(bed.sysroot)/boot \(bed.fixtures)/boot-before && mount -t tmpfs -o size=\(size) tmpfs \(bed.sysroot)/boot \
              && cp -a \(bed.fixtures)/boot-before/. \(bed.sysroot)/boot/
            """)
    }

    /// Commits base `version` on `test/base` with a kernel and initramfs of these sizes (MiB), the
    /// way a Debian tree has them (`boot/vmlinuz-V`, `boot/initrd.img-V`).
    @discardableResult
    static func composeBase(_ bed: TestBed, version: String, kernelMiB: Int, initramfsMiB: Int) throws -> String {
        let dir = "\(bed.fixtures)/rootfs-kernel-\(version)"
        try Shell.run(
            """
            rm -rf \(dir) && \(Paths.fixtures)/builders/make-rootfs.sh \(dir) \(bed.debs) \(bed.repo) \(version) \
              && head -c \(kernelMiB)M /dev/urandom > \(dir)/boot/vmlinuz-6.1.0-\(version) \
              && head -c \(initramfsMiB)M /dev/urandom > \(dir)/boot/initrd.img-6.1.0-\(version)
            """)
        return try bed.engine().composeRootfs(dir, repo: nil, options: .init(ref: "test/base", version: version))
    }

    @Test func aFullBootIsRefusedBeforeTheBuildAndChangesNothing() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-lib"])
        try Self.separateBoot(bed, size: "40M")
        try Self.composeBase(bed, version: "2.0", kernelMiB: 36, initramfsMiB: 8)
        let before = try bed.status
        let bootBefore = try Shell.run("find \(bed.sysroot)/boot | sort")
        let (code, output) = try Shell.status("\(Paths.cli) upgrade -q --sysroot \(bed.sysroot) 2>&1", environment: TestBed.environment)
        #expect(code != 0)
        #expect(output.split(separator: "\n").count == 1, "\(output)")
        // 36 + 8 MiB and the entries' slack, against a 40 MiB /boot; the rollback deployment's
        // kernel is its own (it shares the base's here: nothing to free), so no hint.
        #expect(output.hasPrefix("error: not enough space on /boot: need 45 MiB, have 39 MiB"), "\(output)")
        #expect(!output.contains("removing the rollback"), "\(output)")
        #expect(try bed.status == before)
        #expect(try Shell.run("find \(bed.sysroot)/boot | sort") == bootBefore)
        #expect(bed.leftovers.isEmpty)
        // Changes that keep the deployed kernel need nothing new on /boot.
        _ = try bed.engine().install(["fixture-app"])
        // With room, the same upgrade goes through and its kernel is in /boot.
        try Shell.run("mount -o remount,size=128M \(bed.sysroot)/boot")
        try Shell.run("\(Paths.cli) upgrade -q --sysroot \(bed.sysroot)", environment: TestBed.environment)
        #expect(try Shell.run("ls \(bed.sysroot)/boot/ostree/*/").contains("vmlinuz-6.1.0-2.0"))
        #expect(try bed.packageNames().contains("fixture-app"))
        // A third kernel: the rollback (release 1, a kernel of its own) would free its boot files.
        try Self.composeBase(bed, version: "3.0", kernelMiB: 90, initramfsMiB: 8)
        let (again, refused) = try Shell.status("\(Paths.cli) upgrade -q --sysroot \(bed.sysroot) 2>&1", environment: TestBed.environment)
        #expect(again != 0)
        #expect(refused.contains("not enough space on /boot: need 99 MiB, have "), "\(refused)")
        #expect(refused.contains("(removing the rollback deployment would free 1 MiB: apt-layer cleanup --rollback)"), "\(refused)")
    }

    /// The engine's error is the out-of-space kind the agent answers with 507, and a dry run is
    /// not refused (it deploys nothing).
    @Test func theRefusalIsOutOfSpaceAndADryRunPasses() throws {
        let bed = try TestBed()
        try Self.separateBoot(bed, size: "16M")
        try Self.composeBase(bed, version: "2.0", kernelMiB: 20, initramfsMiB: 1)
        let error = try #require(throws: EngineError.self) { try bed.engine().upgrade() }
        #expect(error.isOutOfSpace && error.kind == .refused, "\(error)")
        #expect(try bed.engine().upgrade(flags: .init(dryRun: true)).changed)
    }
}

@Suite("space preflight arithmetic", .tags(.fast))
struct SpacePreflightArithmeticTests {
    static let mib: UInt64 = 1 << 20

    @Test func oneFilesystemCountsBothNeedsSeparateOnesEach() {
        var p = SpacePreflight(
            bootNeeded: 30 * Self.mib, sysrootNeeded: 5 * Self.mib, bootFree: 32 * Self.mib, sysrootFree: 32 * Self.mib,
            sameFilesystem: true, rollbackWouldFree: 0)
        #expect(p.refusal == "not enough space on /boot: need 35 MiB, have 32 MiB")
        p.sameFilesystem = false
        #expect(p.refusal == nil)
        p.sysrootFree = 4 * Self.mib
        #expect(p.refusal == "not enough space on /sysroot: need 5 MiB, have 4 MiB")
        p.bootFree = 10 * Self.mib
        p.rollbackWouldFree = 40 * Self.mib + 1
        #expect(
            p.refusal
                == "not enough space on /boot: need 30 MiB, have 10 MiB (removing the rollback deployment would free 41 MiB: apt-layer cleanup --rollback)"
        )
        #expect(SpacePreflight.blocks(1, 4096) == 4096 && SpacePreflight.blocks(8192, 4096) == 8192 && SpacePreflight.blocks(5, 0) == 5)
    }
}
