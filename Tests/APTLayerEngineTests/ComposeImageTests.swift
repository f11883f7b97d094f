import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// `apt-layer compose image` without booting (the VM tier boots one): the partition table, what
/// each ext4 filesystem holds (read with debugfs at the partition's offset), and bad input.
@Suite("compose image", .serialized, .asRoot, .offPool)
struct ComposeImageTests {
    /// `debugfs -R CMD` on the filesystem at `offset` bytes into `image`.
    static func debugfs(_ image: String, offset: Int, _ command: String) throws -> String {
        try Shell.run("debugfs -R \(Shell.quote(command)) \(Shell.quote("\(image)?offset=\(offset)")) 2>/dev/null")
    }

    /// A base with stand-ins for Debian's signed EFI programs at their paths (the VM tier boots
    /// the real ones under Secure Boot): `test/efi`, the fixture base plus those files.
    static func efiBase(_ bed: TestBed) throws -> String {
        let tree = "\(bed.fixtures)/efi-tree"
        for path in [EFIChain.candidates.shim[0], EFIChain.candidates.grub[0], EFIChain.candidates.mokManager[0]] {
            try Shell.run("mkdir -p \(tree)/$(dirname \(path)) && echo 'stand-in for \(path)' > \(tree)/\(path)")
        }
        try Shell.run(
            "ostree --repo=\(bed.sysroot)/ostree/repo commit -b test/efi --tree=ref=test/base --tree=dir=\(tree) --owner-uid=0 --owner-gid=0"
        )
        return "test/efi"
    }

    /// `mtype`/`mdir` (mtools) on the FAT filesystem at `offset` bytes into `image`.
    static func mtools(_ image: String, offset: Int, _ command: String) throws -> String {
        try Shell.run("MTOOLS_SKIP_CHECK=1 \(command) -i \(Shell.quote("\(image)@@\(offset)"))")
    }

    @Test func writesAPartitionedImageWithGRUBAndTheDeployment() throws {
        let bed = try TestBed(deploy: false)
        let image = "\(bed.fixtures)/disk.raw"
        var options = ImageBuilder.Options(repo: "\(bed.sysroot)/ostree/repo", ref: try Self.efiBase(bed), output: image)
        options.freeMiB = 16
        options.bootMiB = 64
        let etc = "\(bed.fixtures)/etc-overlay"
        try Shell.run("mkdir -p \(etc)/apt-layer && echo 'listen: \"0.0.0.0:7443\"' > \(etc)/apt-layer/agent.yaml")
        options.etcOverlay = etc
        let built = try ImageBuilder(options: options).build()
        #expect(try Shell.run("ostree --repo=\(bed.sysroot)/ostree/repo rev-parse test/efi").hasPrefix(built.checksum))

        let table = try JSONSerialization.jsonObject(with: Data(try Shell.run("sfdisk --json \(image)").utf8)) as? [String: Any]
        let parts = ((table?["partitiontable"] as? [String: Any])?["partitions"] as? [[String: Any]]) ?? []
        // Hybrid by default: BIOS boot partition, EFI system partition, /boot, root.
        #expect(parts.map { $0["name"] as? String } == ["bios", "esp", "boot", "root"])
        #expect(parts.first?["type"] as? String == ImageBuilder.biosBootType)
        #expect(parts[1]["type"] as? String == ImageBuilder.espType)
        let esp = (parts[1]["start"] as? Int ?? 0) * 512
        let boot = (parts[2]["start"] as? Int ?? 0) * 512
        let root = (parts[3]["start"] as? Int ?? 0) * 512

        // The ESP: shim at the removable-media path and in EFI/debian, signed GRUB and MokManager
        // beside it (the base's own files), and the stub that finds /boot by UUID.
        #expect(try Self.mtools(image, offset: esp, "mtype ::/EFI/BOOT/BOOTX64.EFI") == "stand-in for usr/lib/shim/shimx64.efi.signed\n")
        #expect(try Self.mtools(image, offset: esp, "mtype ::/EFI/debian/grubx64.efi").contains("grubx64.efi.signed"))
        #expect(try Self.mtools(image, offset: esp, "mtype ::/EFI/BOOT/mmx64.efi").contains("mmx64.efi.signed"))
        let stub = try Self.mtools(image, offset: esp, "mtype ::/EFI/debian/grub.cfg")
        #expect(
            stub.contains("search --no-floppy --fs-uuid --set=root \(built.bootUUID)\n") && stub.contains("configfile $prefix/grub.cfg"), "\(stub)")

        // /boot: the static grub.cfg (the boot counter, then libostree's syslinux.cfg read as GRUB
        // script on both firmwares), the empty counter block, libostree's loader link and menu.
        let grubCfg = try Self.debugfs(image, offset: boot, "cat /grub/grub.cfg")
        #expect(grubCfg.contains("function LABEL {") && grubCfg.contains("source /loader/syslinux.cfg\napt_layer_flush\n"), "\(grubCfg)")
        #expect(grubCfg.contains("load_env --file ${prefix}/grubenv apt_layer_tries apt_layer_fell_back"), "\(grubCfg)")
        #expect(try Self.debugfs(image, offset: boot, "cat /grub/grubenv") == String(decoding: try GrubEnvironment().serialized(), as: UTF8.self))
        let syslinux = try Self.debugfs(image, offset: boot, "cat /loader/syslinux.cfg")
        #expect(syslinux.hasPrefix("TIMEOUT 3"), "\(syslinux)")
        #expect(syslinux.contains("APPEND ostree=/ostree/boot."), "\(syslinux)")
        // A release that cannot boot reboots (panic, dracut's emergency) instead of waiting at a console.
        #expect(
            syslinux.contains(
                " root=UUID=\(built.rootUUID) rw panic=10 rd.emergency=reboot rd.shell=0 systemd.crash_reboot=1 console=tty0 console=ttyS0,115200n8\n"
            ),
            "\(syslinux)")
        #expect(try Self.debugfs(image, offset: boot, "stat /grub/i386-pc/normal.mod").contains("Inode:"))
        // root: the deployment, /boot mounted by UUID, the overlay, an empty /boot mount point.
        let deployment = "/ostree/deploy/debian/deploy/\(built.checksum).1"
        let fstab = try Self.debugfs(image, offset: root, "cat \(deployment)/etc/fstab")
        #expect(fstab.contains("UUID=\(built.bootUUID) /boot ext4"), "\(fstab)")
        #expect(try Self.debugfs(image, offset: root, "cat \(deployment)/etc/apt-layer/agent.yaml").contains("0.0.0.0:7443"))
        let watchdog = try Self.debugfs(image, offset: root, "cat \(deployment)/etc/systemd/system.conf.d/50-apt-layer-watchdog.conf")
        #expect(watchdog.contains("[Manager]\nRuntimeWatchdogSec=30s\n"), "\(watchdog)")
        // `ls -p` prints /inode/mode/uid/gid/name/size/ per entry: only . and .. in the mount point.
        let mountPoint = try Self.debugfs(image, offset: root, "ls -p /boot").split(separator: "\n").filter { $0.hasPrefix("/") }
        #expect(mountPoint.count == 2, "\(mountPoint)")
        #expect(try Self.debugfs(image, offset: root, "stat /ostree/deploy/debian/var/log/journal").contains("Type: directory"))
        // GRUB's boot code points at core.img in the BIOS boot partition.
        let kernelSector = try Shell.run("od -An -t u8 -j 92 -N 8 \(image)").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(kernelSector == "2048")
        #expect(try FileManager.default.contentsOfDirectory(atPath: bed.fixtures).filter { $0.hasPrefix(".apt-layer-image-") }.isEmpty)
    }

    @Test func badInputLeavesNothing() throws {
        let bed = try TestBed(deploy: false)
        let image = "\(bed.fixtures)/disk.raw"
        let cases: [(ImageBuilder.Options, String)] = [
            (.init(repo: "\(bed.sysroot)/ostree/repo", ref: "no/such/ref", output: image), "ostree failed"),
            (.init(repo: "\(bed.fixtures)/nowhere", ref: "test/base", output: image), "ostree failed"),
            (.init(repo: "\(bed.sysroot)/ostree/repo", ref: "test/base", output: "\(bed.fixtures)/missing-dir/disk.raw"), "no directory"),
        ]
        for (options, words) in cases {
            #expect {
                try ImageBuilder(options: options).build()
            } throws: { error in
                "\(error)".contains(words) && !"\(error)".contains("\n")
            }
            #expect(!FileManager.default.fileExists(atPath: image))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: bed.fixtures).filter {
                    $0.hasPrefix(".apt-layer-image-") || $0.contains(".partial-")
                }.isEmpty)
        }
        // UEFI from a base without Debian's signed shim and GRUB: refused, naming what is missing.
        var noShim = ImageBuilder.Options(repo: "\(bed.sysroot)/ostree/repo", ref: "test/base", output: image)
        noShim.firmware = .uefi
        #expect {
            try ImageBuilder(options: noShim).build()
        } throws: { error in
            "\(error)".contains("the base has no /usr/lib/shim/shimx64.efi.signed: UEFI images need the distribution's signed shim")
        }
        #expect(!FileManager.default.fileExists(atPath: image))
        var wrongFormat = ImageBuilder.Options(repo: "\(bed.sysroot)/ostree/repo", ref: "test/base", output: image)
        wrongFormat.format = "vmdk"
        #expect(throws: EngineError.self) { try ImageBuilder(options: wrongFormat).build() }
        #expect(try Shell.run("mount").contains(".apt-layer-image-") == false)
    }

    /// BIOS only: no EFI system partition, and a base without shim is fine. (GRUB's prefix in the
    /// compressed core.img, `(,gpt2)` here and `(,gpt3)` on a hybrid disk, is proven by booting:
    /// the VM tier boots the hybrid image with SeaBIOS.)
    @Test func writesABIOSOnlyImage() throws {
        let bed = try TestBed(deploy: false)
        let image = "\(bed.fixtures)/bios.raw"
        var options = ImageBuilder.Options(repo: "\(bed.sysroot)/ostree/repo", ref: "test/base", output: image)
        options.firmware = .bios
        options.freeMiB = 16
        options.bootMiB = 64
        _ = try ImageBuilder(options: options).build()
        let table = try JSONSerialization.jsonObject(with: Data(try Shell.run("sfdisk --json \(image)").utf8)) as? [String: Any]
        let parts = ((table?["partitiontable"] as? [String: Any])?["partitions"] as? [[String: Any]]) ?? []
        #expect(parts.map { $0["name"] as? String } == ["bios", "boot", "root"])
        #expect(parts.first?["type"] as? String == ImageBuilder.biosBootType)
    }
}
