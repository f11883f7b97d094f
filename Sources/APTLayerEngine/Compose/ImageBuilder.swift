import APTLayerModel
import Foundation
import Glibc
import OSTree

/// Writes a bootable disk image from a committed base (docs/image.md): GPT with a BIOS boot
/// partition, an ext4 `/boot` and an ext4 root holding the OSTree sysroot with one deployment.
///
/// Boot chain: SeaBIOS → GRUB 2.06 `core.img` in the BIOS boot partition → a static
/// `/boot/grub/grub.cfg` that counts boots down in `/boot/grub/grubenv` (``BootMenu``) and reads
/// `/boot/loader/syslinux.cfg`, which libostree rewrites at every
/// deployment change (`sysroot.bootloader=syslinux`, swapped atomically with the BLS entries) →
/// kernel and dracut initramfs (ostree-boot's module runs `ostree-prepare-root`) → systemd.
/// Built without loop devices: partitions are filled with `mkfs.ext4 -d` at their offsets, and
/// GRUB's boot and core images are written with `dd`.
public struct ImageBuilder: Sendable {
    /// What to build.
    public struct Options: Sendable {
        /// The repository holding the base commit, and its ref.
        public var repo: String
        public var ref: String
        /// The image file to write.
        public var output: String
        /// `raw` or `qcow2` (qemu-img from qemu-utils).
        public var format = "raw"
        /// Which firmware boots the disk.
        public var firmware = Firmware.hybrid
        /// Size of the EFI system partition (UEFI and hybrid).
        public var espMiB = 64
        /// The stateroot; nil for the base's os-release `ID` (`debian`, `ubuntu`).
        public var osname: String?
        /// Kernel arguments besides `root=UUID=… rw` and ``failureArguments`` (which the builder sets).
        public var kernelArguments = ["console=tty0", "console=ttyS0,115200n8"]
        /// What a remote host does when a release cannot boot: reboot 10 s after a kernel panic,
        /// reboot instead of waiting at dracut's emergency shell (no shell: nobody is at the
        /// console of a fleet's host), and reboot 10 s after systemd as PID 1 crashes or finds no
        /// init to execute instead of freezing. Set before ``kernelArguments``, which can override them.
        public var failureArguments = ["panic=10", "rd.emergency=reboot", "rd.shell=0", "systemd.crash_reboot=1"]
        /// systemd's hardware watchdog (`RuntimeWatchdogSec=`): a host that hangs is reset where
        /// a watchdog device exists (systemd ignores the setting where none does). nil: not set.
        public var runtimeWatchdogSeconds: Int? = 30
        /// Size of the /boot partition.
        public var bootMiB = 512
        /// Free space left on the root filesystem.
        public var freeMiB = 1024
        /// A directory whose contents are copied into the deployment's /etc (configuration,
        /// certificates).
        public var etcOverlay: String?

        public init(repo: String, ref: String, output: String) {
            self.repo = repo
            self.ref = ref
            self.output = output
        }
    }

    /// Which firmware boots the disk: BIOS (GRUB's `core.img` in a BIOS boot partition), UEFI
    /// (Debian's signed shim and GRUB on an EFI system partition: Secure Boot works), or both.
    public enum Firmware: String, Sendable, CaseIterable {
        case bios, uefi, hybrid

        var hasBIOS: Bool { self != .uefi }
        var hasEFI: Bool { self != .bios }
    }

    /// What was built.
    public struct Built: Sendable, Equatable {
        public var output: String
        public var bytes: Int64
        public var checksum: String
        public var rootUUID: String
        public var bootUUID: String
    }

    /// The BIOS boot partition's GPT type.
    static let biosBootType = "21686148-6449-6E6F-744E-656564454649"
    static let espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    static let linuxType = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    static let grubModules = "/usr/lib/grub/i386-pc"

    let options: Options
    let progress: any ProgressSink

    public init(options: Options, progress: any ProgressSink = SilentProgress()) {
        self.options = options
        self.progress = progress
    }

    /// Builds the image; on failure nothing is left at `output` and no temporary tree remains.
    public func build(token: CancellationToken = .init()) throws -> Built {
        try checkTools()
        guard ["raw", "qcow2"].contains(options.format) else {
            throw EngineError(.invalidArgument, "image format must be raw or qcow2, not \(options.format)")
        }
        let outputDirectory = (options.output as NSString).deletingLastPathComponent
        guard FileTree.isDirectory(outputDirectory.isEmpty ? "." : outputDirectory) else {
            throw EngineError(.invalidArgument, "no directory for \(options.output)")
        }
        if let overlay = options.etcOverlay, !FileTree.isDirectory(overlay) {
            throw EngineError(.invalidArgument, "--etc \(overlay) is not a directory")
        }
        // The sysroot is built on a private tmpfs: deploying freezes the filesystem holding /boot.
        let work = try makeTemporaryDirectory()
        defer {
            _ = try? Subprocess.run(["umount", "-l", work])
            FileTree.remove(work)
        }
        try run(["mount", "-t", "tmpfs", "-o", "size=16G,mode=0700", "tmpfs", work], token: token)
        let temporary = "\(options.output).partial-\(getpid())"
        defer { unlink(temporary) }
        let built = try assemble(work: work, image: temporary, token: token)
        if options.format == "qcow2" {
            progress.phase("Converting to qcow2")
            try run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", temporary, options.output], token: token)
        } else {
            guard rename(temporary, options.output) == 0 else {
                throw EngineError(.system, "rename \(temporary): \(String(cString: strerror(errno)))")
            }
        }
        var result = built
        result.output = options.output
        result.bytes = Int64((try? FileManager.default.attributesOfItem(atPath: options.output)[.size] as? NSNumber)??.int64Value ?? 0)
        return result
    }

    /// The stateroot name for a base: its os-release `ID` when that is a plain name, else `debian`.
    static func osname(of ref: String, in repo: String) -> String {
        // A repository or ref that cannot be read is named by the copy that follows, in one line.
        guard let source = try? Repo(path: repo) else { return "debian" }
        let text = ["/usr/lib/os-release", "/usr/etc/os-release"].lazy.compactMap { try? source.readFile($0, in: ref) }.first
        let id = text.map { OSRelease(text: String(decoding: $0, as: UTF8.self)).fields["ID"] ?? "" } ?? ""
        return !id.isEmpty && id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) ? id : "debian"
    }

    func assemble(work: String, image: String, token: CancellationToken) throws -> Built {
        let sysroot = "\(work)/sysroot"
        let bootfs = "\(work)/bootfs"
        try FileTree.makeDirectory(sysroot)
        let osname = options.osname ?? Self.osname(of: options.ref, in: options.repo)
        let engine = Engine(options: .init(sysroot: sysroot, osname: osname))
        progress.phase("Initialising the sysroot")
        try engine.initialize(osname: osname)
        let repo = "\(sysroot)/ostree/repo"
        progress.phase("Copying \(options.ref) from \(options.repo)")
        try run(["ostree", "pull-local", "--repo=\(repo)", options.repo, options.ref], token: token)
        // libostree keeps boot/loader.N/syslinux.cfg in step with the BLS entries; GRUB reads it.
        try run(["ostree", "config", "--repo=\(repo)", "set", "sysroot.bootloader", "syslinux"], token: token)
        try FileTree.makeDirectory("\(sysroot)/boot/loader.0")
        try FileTree.makeDirectory("\(sysroot)/boot/syslinux")
        try FileTree.write("\(sysroot)/boot/loader.0/syslinux.cfg", "TIMEOUT 3\n")
        try FileTree.symlink("loader.0", at: "\(sysroot)/boot/loader")
        try FileTree.symlink("../loader/syslinux.cfg", at: "\(sysroot)/boot/syslinux/syslinux.cfg")

        let rootUUID = UUID().uuidString.lowercased()
        let bootUUID = UUID().uuidString.lowercased()
        progress.phase("Deploying \(options.ref)")
        _ = try engine.rebase(options.ref, token: token)
        _ = try engine.kernelArguments(
            .init(append: ["root=UUID=\(rootUUID)", "rw"] + options.failureArguments + options.kernelArguments), token: token)
        _ = try engine.cleanup(pending: false, rollback: true)
        let status = try engine.status()
        guard let deployment = status.deployments.first else { throw EngineError(.system, "no deployment was written") }
        let root = "\(sysroot)/ostree/deploy/\(osname)/deploy/\(deployment.checksum).\(deployment.serial)"
        let efi = options.firmware.hasEFI ? try EFIChain.find(in: root) : nil
        try FileTree.append("\(root)/etc/fstab", "UUID=\(bootUUID) /boot ext4 defaults,nodev,nosuid,noexec 0 2\n")
        try FileTree.makeDirectory("\(sysroot)/ostree/deploy/\(osname)/var/log/journal")
        if let seconds = options.runtimeWatchdogSeconds {
            try FileTree.makeDirectory("\(root)/etc/systemd/system.conf.d")
            try FileTree.write(
                "\(root)/etc/systemd/system.conf.d/50-apt-layer-watchdog.conf",
                "# Written by apt-layer compose image: reset a hung host where a hardware watchdog exists.\n[Manager]\nRuntimeWatchdogSec=\(seconds)s\n"
            )
        }
        if let overlay = options.etcOverlay { try run(["cp", "-a", "--no-preserve=ownership", "\(overlay)/.", "\(root)/etc/"], token: token) }

        progress.phase("Installing GRUB")
        try FileTree.makeDirectory("\(sysroot)/boot/grub/i386-pc")
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.grubModules) where name.hasSuffix(".mod") || name.hasSuffix(".lst") {
            do {
                try FileManager.default.copyItem(atPath: "\(Self.grubModules)/\(name)", toPath: "\(sysroot)/boot/grub/i386-pc/\(name)")
            } catch {
                throw EngineError.wrap(error, "copy GRUB module \(name)")
            }
        }
        try FileTree.write("\(sysroot)/boot/grub/grub.cfg", Self.grubConfiguration)
        // The boot counter's block, empty (unarmed): what `grub-editenv grubenv create` writes.
        do {
            try FileTree.write("\(sysroot)/boot/grub/grubenv", String(decoding: try GrubEnvironment().serialized(), as: UTF8.self))
        } catch {
            throw EngineError.wrap(error, "write the boot counter's block")
        }
        // The /boot partition's content; the root filesystem keeps an empty mount point.
        try run(["mv", "\(sysroot)/boot", bootfs], token: token)
        try FileTree.makeDirectory("\(sysroot)/boot")

        progress.phase("Writing the disk image")
        let rootMiB = try sizeMiB(sysroot)
        let rootPartitionMiB = rootMiB + rootMiB / 4 + options.freeMiB
        let firmwareMiB = (options.firmware.hasBIOS ? 1 : 0) + (options.firmware.hasEFI ? options.espMiB : 0)
        let totalMiB = 1 + firmwareMiB + options.bootMiB + rootPartitionMiB + 1
        try run(["truncate", "-s", "\(totalMiB)M", image], token: token)
        var table = "label: gpt\n"
        if options.firmware.hasBIOS { table += "start=2048, size=2048, type=\(Self.biosBootType), name=bios\n" }
        if options.firmware.hasEFI { table += "size=\(options.espMiB)MiB, type=\(Self.espType), name=esp\n" }
        table += "size=\(options.bootMiB)MiB, type=\(Self.linuxType), name=boot\ntype=\(Self.linuxType), name=root\n"
        try FileTree.write("\(work)/partitions", table)
        try run(["sh", "-c", "sfdisk -q \"$1\" < \"$2\"", "sh", image, "\(work)/partitions"], token: token)
        let parts = try partitions(image)
        guard let boot = parts["boot"], let rootPart = parts["root"] else { throw EngineError(.system, "sfdisk wrote no boot/root partitions") }
        try run(
            ["mkfs.ext4", "-q", "-F", "-L", "boot", "-U", bootUUID, "-E", "offset=\(boot.start * 512)", "-d", bootfs, image, "\(boot.sectors / 2)k"],
            token: token)
        try run(
            [
                "mkfs.ext4", "-q", "-F", "-L", "root", "-U", rootUUID, "-E", "offset=\(rootPart.start * 512)", "-d", sysroot, image,
                "\(rootPart.sectors / 2)k",
            ], token: token)
        if options.firmware.hasBIOS {
            // GRUB's prefix names the boot partition by its number.
            try writeGRUB(image: image, work: work, bootPartition: options.firmware.hasEFI ? 3 : 2, token: token)
        }
        if let efi {
            guard let esp = parts["esp"] else { throw EngineError(.system, "sfdisk wrote no EFI system partition") }
            try writeESP(image: image, at: esp, chain: efi, deployment: root, bootUUID: bootUUID, work: work, token: token)
        }
        return Built(output: image, bytes: 0, checksum: deployment.checksum, rootUUID: rootUUID, bootUUID: bootUUID)
    }

    /// `/boot/grub/grub.cfg`, written once: serial console on BIOS, the boot counter
    /// (``BootMenu/countingScript(environment:)``), libostree's `/loader/syslinux.cfg` read as
    /// GRUB script (``BootMenu/entriesScript``: the same on BIOS and on EFI under Secure Boot),
    /// then the counted default.
    static var grubConfiguration: String {
        let head = [
            "# Written once by apt-layer compose image (docs/image.md, docs/boot-counting.md).",
            "if [ \"${grub_platform}\" = pc ]; then",
            "  serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1",
            "  terminal_input serial console",
            "  terminal_output serial console",
            "fi",
            "set timeout=1",
            "",
        ]
        return head.joined(separator: "\n") + "\n" + BootMenu.countingScript() + BootMenu.entriesScript + BootMenu.selection
    }

    /// GRUB's BIOS stages without grub-install (which wants a block device): core.img into the
    /// BIOS boot partition (LBA 2048) with its first blocklist pointing past its own first sector,
    /// boot.img into the MBR's code area (the protective partition table stays) pointing at it.
    func writeGRUB(image: String, work: String, bootPartition: Int, token: CancellationToken) throws {
        let core = "\(work)/core.img"
        try run(
            [
                "grub-mkimage", "-O", "i386-pc", "-d", Self.grubModules, "-p", "(,gpt\(bootPartition))/grub", "-o", core, "biosdisk", "part_gpt",
                "ext2",
            ],
            token: token)
        guard let coreSize = try? FileManager.default.attributesOfItem(atPath: core)[.size] as? NSNumber, coreSize.intValue <= 2048 * 512 else {
            throw EngineError(.system, "GRUB's core image does not fit the 1 MiB BIOS boot partition")
        }
        try run(["dd", "if=\(core)", "of=\(image)", "bs=512", "seek=2048", "conv=notrunc", "status=none"], token: token)
        try patch(image, at: 2048 * 512 + 500, value: 2049)  // diskboot's blocklist: core.img's second sector
        try run(["dd", "if=\(Self.grubModules)/boot.img", "of=\(image)", "bs=440", "count=1", "conv=notrunc", "status=none"], token: token)
        try patch(image, at: 0x5c, value: 2048)  // boot.img: where core.img starts
    }

    /// The EFI system partition, FAT, made without a loop device (mkfs.fat on a file, mtools'
    /// mcopy into it, then copied into place): the distribution's signed shim as the
    /// removable-media path `EFI/BOOT/BOOTX64.EFI` and in `EFI/VENDOR` (``EFIChain``), signed GRUB
    /// and MokManager beside it, and the stub `EFI/VENDOR/grub.cfg` (signed GRUB's prefix) that
    /// finds `/boot` by UUID and reads its `grub/grub.cfg`. The programs come from the deployment,
    /// so they are the base's own.
    func writeESP(
        image: String, at esp: (start: Int, sectors: Int), chain: EFIChain, deployment: String, bootUUID: String, work: String,
        token: CancellationToken
    )
        throws
    {
        progress.phase("Writing the EFI system partition")
        let fat = "\(work)/esp.fat"
        try run(["mkfs.fat", "-C", "-n", "ESP", fat, "\(esp.sectors / 2)"], token: token)
        let stub = [
            "# Written by apt-layer compose image: the menu lives on /boot (docs/image.md).",
            "search --no-floppy --fs-uuid --set=root \(bootUUID)",
            "set prefix=($root)/grub",
            "configfile $prefix/grub.cfg",
        ]
        try FileTree.write("\(work)/esp-grub.cfg", stub.joined(separator: "\n") + "\n")
        let mtools = ["env", "MTOOLS_SKIP_CHECK=1"]
        try run(mtools + ["mmd", "-i", fat, "::/EFI", "::/EFI/BOOT", "::/EFI/\(chain.vendor)"], token: token)
        for (source, targets) in chain.placements {
            for target in targets { try run(mtools + ["mcopy", "-i", fat, "\(deployment)/\(source)", "::/\(target)"], token: token) }
        }
        try run(mtools + ["mcopy", "-i", fat, "\(work)/esp-grub.cfg", "::/EFI/\(chain.vendor)/grub.cfg"], token: token)
        try run(["dd", "if=\(fat)", "of=\(image)", "bs=512", "seek=\(esp.start)", "conv=notrunc", "status=none"], token: token)
    }

    /// Writes `value` as 8 little-endian bytes at `offset`.
    func patch(_ path: String, at offset: Int, value: UInt64) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EngineError(.system, "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var le = value.littleEndian
        guard pwrite(fd, &le, 8, off_t(offset)) == 8 else { throw EngineError(.system, "write \(path): \(String(cString: strerror(errno)))") }
    }

    /// Partition name → start sector and sector count, from `sfdisk --json`.
    func partitions(_ image: String) throws -> [String: (start: Int, sectors: Int)] {
        struct Dump: Decodable {
            struct Table: Decodable {
                struct Partition: Decodable {
                    let start: Int
                    let size: Int
                    let name: String?
                }
                let partitions: [Partition]
            }
            let partitiontable: Table
        }
        let result = try Subprocess.run(["sfdisk", "--json", image])
        guard result.succeeded, let dump = try? JSONDecoder().decode(Dump.self, from: Data(result.output.utf8)) else {
            throw EngineError(.system, "sfdisk --json \(image): \(result.output.split(separator: "\n").last ?? "")")
        }
        var map: [String: (start: Int, sectors: Int)] = [:]
        for p in dump.partitiontable.partitions { if let name = p.name { map[name] = (p.start, p.size) } }
        return map
    }

    func sizeMiB(_ path: String) throws -> Int {
        let result = try Subprocess.run(["du", "-sm", "--apparent-size", path])
        guard result.succeeded, let mib = Int(result.output.split(separator: "\t").first ?? "") else {
            throw EngineError(.system, "du \(path): \(result.output)")
        }
        return mib
    }

    func makeTemporaryDirectory() throws -> String {
        let base = (options.output as NSString).deletingLastPathComponent
        var template = Array("\(base.isEmpty ? "." : base)/.apt-layer-image-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw EngineError(.system, "mkdtemp: \(String(cString: strerror(errno)))") }
        return String(cString: made)
    }

    /// The programs the builder runs, with the Debian package each comes from.
    func checkTools() throws {
        var tools = [
            ("ostree", "ostree"), ("sfdisk", "fdisk"), ("mkfs.ext4", "e2fsprogs"), ("grub-mkimage", "grub-common"), ("truncate", "coreutils"),
        ]
        if options.format == "qcow2" { tools.append(("qemu-img", "qemu-utils")) }
        if options.firmware.hasEFI { tools += [("mkfs.fat", "dosfstools"), ("mcopy", "mtools")] }
        for (tool, package) in tools where Subprocess.resolve(tool, path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") == nil {
            throw EngineError(.invalidArgument, "compose image needs \(tool) (Debian package \(package))")
        }
        guard !options.firmware.hasBIOS || FileTree.exists("\(Self.grubModules)/boot.img") else {
            throw EngineError(.invalidArgument, "compose image needs GRUB's BIOS images in \(Self.grubModules) (Debian package grub-pc-bin)")
        }
    }

    func run(_ argv: [String], token: CancellationToken) throws {
        let result = try Subprocess.run(argv, token: token)
        guard result.succeeded else {
            let last = result.output.split(separator: "\n").last.map(String.init) ?? ""
            throw EngineError(.system, "\(argv[0]) failed: \(result.signalDeath(argv[0]) ?? last)")
        }
    }
}
