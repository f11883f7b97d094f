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

    @Test func writesAPartitionedImageWithGRUBAndTheDeployment() throws {
        let bed = try TestBed(deploy: false)
        let image = "\(bed.fixtures)/disk.raw"
        var options = ImageBuilder.Options(repo: "\(bed.sysroot)/ostree/repo", ref: "test/base", output: image)
        options.freeMiB = 16
        options.bootMiB = 64
        let etc = "\(bed.fixtures)/etc-overlay"
        try Shell.run("mkdir -p \(etc)/apt-layer && echo 'listen: \"0.0.0.0:7443\"' > \(etc)/apt-layer/agent.yaml")
        options.etcOverlay = etc
        let built = try ImageBuilder(options: options).build()
        #expect(built.checksum == bed.baseChecksum)

        let table = try JSONSerialization.jsonObject(with: Data(try Shell.run("sfdisk --json \(image)").utf8)) as? [String: Any]
        let parts = ((table?["partitiontable"] as? [String: Any])?["partitions"] as? [[String: Any]]) ?? []
        #expect(parts.map { $0["name"] as? String } == ["bios", "boot", "root"])
        #expect(parts.first?["type"] as? String == ImageBuilder.biosBootType)
        let boot = (parts[1]["start"] as? Int ?? 0) * 512
        let root = (parts[2]["start"] as? Int ?? 0) * 512

        // /boot: the static grub.cfg, libostree's loader link and the menu it wrote.
        #expect(try Self.debugfs(image, offset: boot, "cat /grub/grub.cfg").contains("syslinux_source /loader/syslinux.cfg"))
        let syslinux = try Self.debugfs(image, offset: boot, "cat /loader/syslinux.cfg")
        #expect(syslinux.hasPrefix("TIMEOUT 3"), "\(syslinux)")
        #expect(syslinux.contains("APPEND ostree=/ostree/boot."), "\(syslinux)")
        // A release that cannot boot reboots (panic, dracut's emergency) instead of waiting at a console.
        #expect(
            syslinux.contains(" root=UUID=\(built.rootUUID) rw panic=10 rd.emergency=reboot rd.shell=0 console=tty0 console=ttyS0,115200n8\n"),
            "\(syslinux)")
        #expect(try Self.debugfs(image, offset: boot, "stat /grub/i386-pc/syslinuxcfg.mod").contains("Inode:"))
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
        var wrongFormat = ImageBuilder.Options(repo: "\(bed.sysroot)/ostree/repo", ref: "test/base", output: image)
        wrongFormat.format = "vmdk"
        #expect(throws: EngineError.self) { try ImageBuilder(options: wrongFormat).build() }
        #expect(try Shell.run("mount").contains(".apt-layer-image-") == false)
    }
}
