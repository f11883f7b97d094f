import APTLayerModel
import Foundation
import Glibc

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
        public var osname = "debian"
        /// Kernel arguments besides `root=UUID=… rw` and ``failureArguments`` (which the builder sets).
        public var kernelArguments = ["console=tty0", "console=ttyS0,115200n8"]
        /// What a remote host does when a release cannot boot: reboot 10 s after a kernel panic,
        /// and reboot instead of waiting at dracut's emergency shell (no shell: nobody is at the
        /// console of a fleet's host). Set before ``kernelArguments``, which can override them.
        public var failureArguments = ["panic=10", "rd.emergency=reboot", "rd.shell=0"]
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

    func assemble(work: String, image: String, token: CancellationToken) throws -> Built {
        let sysroot = "\(work)/sysroot"
        let bootfs = "\(work)/bootfs"
        try FileTree.makeDirectory(sysroot)
        let engine = Engine(options: .init(sysroot: sysroot, osname: options.osname))
        progress.phase("Initialising the sysroot")
        try engine.initialize(osname: options.osname)
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
        let root = "\(sysroot)/ostree/deploy/\(options.osname)/deploy/\(deployment.checksum).\(deployment.serial)"
        try FileTree.append("\(root)/etc/fstab", "UUID=\(bootUUID) /boot ext4 defaults,nodev,nosuid,noexec 0 2\n")
        try FileTree.makeDirectory("\(sysroot)/ostree/deploy/\(options.osname)/var/log/journal")
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
        try FileTree.write(
            "\(sysroot)/boot/grub/grub.cfg",
            """
            # Written once by apt-layer compose image; libostree rewrites /loader/syslinux.cfg instead.
            serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
            terminal_input serial console
            terminal_output serial console
            set timeout=1

            """ + BootMenu.countingScript() + """
                insmod syslinuxcfg
                syslinux_source /loader/syslinux.cfg

                """ + BootMenu.selection)
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
        let totalMiB = 1 + 1 + options.bootMiB + rootPartitionMiB + 1
        try run(["truncate", "-s", "\(totalMiB)M", image], token: token)
        let table = """
            label: gpt
            start=2048, size=2048, type=\(Self.biosBootType), name=bios
            size=\(options.bootMiB)MiB, type=\(Self.linuxType), name=boot
            type=\(Self.linuxType), name=root

            """
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
        try writeGRUB(image: image, work: work, token: token)
        return Built(output: image, bytes: 0, checksum: deployment.checksum, rootUUID: rootUUID, bootUUID: bootUUID)
    }

    /// GRUB's BIOS stages without grub-install (which wants a block device): core.img into the
    /// BIOS boot partition (LBA 2048) with its first blocklist pointing past its own first sector,
    /// boot.img into the MBR's code area (the protective partition table stays) pointing at it.
    func writeGRUB(image: String, work: String, token: CancellationToken) throws {
        let core = "\(work)/core.img"
        try run(
            ["grub-mkimage", "-O", "i386-pc", "-d", Self.grubModules, "-p", "(,gpt2)/grub", "-o", core, "biosdisk", "part_gpt", "ext2"], token: token)
        guard let coreSize = try? FileManager.default.attributesOfItem(atPath: core)[.size] as? NSNumber, coreSize.intValue <= 2048 * 512 else {
            throw EngineError(.system, "GRUB's core image does not fit the 1 MiB BIOS boot partition")
        }
        try run(["dd", "if=\(core)", "of=\(image)", "bs=512", "seek=2048", "conv=notrunc", "status=none"], token: token)
        try patch(image, at: 2048 * 512 + 500, value: 2049)  // diskboot's blocklist: core.img's second sector
        try run(["dd", "if=\(Self.grubModules)/boot.img", "of=\(image)", "bs=440", "count=1", "conv=notrunc", "status=none"], token: token)
        try patch(image, at: 0x5c, value: 2048)  // boot.img: where core.img starts
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
        for (tool, package) in tools where Subprocess.resolve(tool, path: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") == nil {
            throw EngineError(.invalidArgument, "compose image needs \(tool) (Debian package \(package))")
        }
        guard FileTree.exists("\(Self.grubModules)/boot.img") else {
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
