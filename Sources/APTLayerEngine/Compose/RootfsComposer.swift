import APTLayerModel
import Foundation
import Glibc
import OSTree

/// Turns a usrmerged Debian root filesystem into a bootable OSTree commit that follows the base
/// contract (docs/base-contract.md): /etc in /usr/etc, an empty /var recreated by tmpfiles.d, the
/// dpkg database under /usr, kernels under /usr/lib/modules.
public struct RootfsComposer: Sendable {
    /// What to commit and how.
    public struct Options: Sendable {
        /// The ref the commit goes on.
        public var ref: String
        /// The `version` metadata; defaults to a UTC timestamp.
        public var version: String?
        /// Put a text file where the kernel would be (test and demo trees have no kernel).
        public var stubKernel: Bool

        /// Creates options.
        public init(ref: String, version: String? = nil, stubKernel: Bool = false) {
            self.ref = ref
            self.version = version
            self.stubKernel = stubKernel
        }
    }

    let progress: any ProgressSink

    /// Creates a composer reporting to `progress`.
    public init(progress: any ProgressSink = SilentProgress()) { self.progress = progress }

    /// FHS directories that become links into /var (rpm-ostree's layout).
    static let varLinks: [(link: String, target: String)] = [
        ("home", "var/home"), ("root", "var/roothome"), ("opt", "var/opt"), ("srv", "var/srv"),
        ("mnt", "var/mnt"), ("usr/local", "var/usrlocal"),
    ]

    /// Converts `rootfs` in place and commits it into `repo`. Returns the commit checksum.
    public func compose(rootfs: String, into repo: Repo, options: Options) throws -> String {
        progress.phase("Converting \(rootfs) to an OSTree base")
        try checkUsrMerge(rootfs)
        let kernelVersion = try moveKernel(rootfs, stub: options.stubKernel)
        try moveEtc(rootfs)
        try movePackageState(rootfs)
        try makeVarLinks(rootfs)
        try makeVarTmpfiles(rootfs)
        try resetSpecialDirectories(rootfs)

        let version = options.version ?? Self.timestampVersion()
        var metadata = CommitMetadata()
        metadata.strings[Layout.Key.version] = version
        metadata.strings[Layout.Key.linux] = kernelVersion
        metadata.bools[Layout.Key.bootable] = true
        progress.phase("Committing \(options.ref) version \(version)")
        do {
            return try repo.writeCommit(
                directory: rootfs, parent: try repo.resolve(options.ref, allowMissing: true),
                subject: "apt-layer compose \(options.ref) \(version)", metadata: metadata, ref: options.ref)
        } catch {
            throw EngineError.wrap(error, "commit \(rootfs)")
        }
    }

    static func timestampVersion() -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd.HHmmss"
        return formatter.string(from: Date())
    }

    private func checkUsrMerge(_ root: String) throws {
        guard FileTree.isDirectory(root) else { throw EngineError(.invalidArgument, "\(root) is not a directory") }
        for dir in ["bin", "sbin", "lib"] {
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(dir)")
            guard target == "usr/\(dir)" else {
                throw EngineError(.invalidArgument, "\(root) is not usrmerged: /\(dir) must be a symlink to usr/\(dir)")
            }
        }
        guard FileTree.exists("\(root)/usr/lib/os-release") || FileTree.exists("\(root)/etc/os-release") else {
            throw EngineError(.invalidArgument, "\(root) has no os-release: not a Debian root filesystem")
        }
    }

    /// Moves /boot/vmlinuz-V and initrd.img-V to /usr/lib/modules/V/; returns V.
    private func moveKernel(_ root: String, stub: Bool) throws -> String {
        let boot = "\(root)/boot"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: boot)) ?? []
        var versions: [String] = []
        for name in names where name.hasPrefix("vmlinuz-") {
            let version = String(name.dropFirst("vmlinuz-".count))
            let dir = "\(root)/usr/lib/modules/\(version)"
            try FileTree.makeDirectory(dir)
            try move("\(boot)/\(name)", "\(dir)/vmlinuz")
            if FileTree.exists("\(boot)/initrd.img-\(version)") { try move("\(boot)/initrd.img-\(version)", "\(dir)/initramfs.img") }
            versions.append(version)
        }
        for name in names where FileTree.exists("\(boot)/\(name)") { FileTree.remove("\(boot)/\(name)") }
        for link in ["vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"] { unlink("\(root)/\(link)") }
        if versions.isEmpty {
            let modules = "\(root)/usr/lib/modules"
            for version in (try? FileManager.default.contentsOfDirectory(atPath: modules)) ?? []
            where FileTree.exists("\(modules)/\(version)/vmlinuz") {
                versions.append(version)
            }
        }
        if versions.isEmpty {
            guard stub else {
                throw EngineError(.invalidArgument, "no kernel in \(root) (boot/vmlinuz-*); use --stub-kernel for a test or demo tree")
            }
            let version = "0.0.0-apt-layer-stub"
            let dir = "\(root)/usr/lib/modules/\(version)"
            try FileTree.makeDirectory(dir)
            try FileTree.write("\(dir)/vmlinuz", "apt-layer stub kernel\n")
            try FileTree.write("\(dir)/initramfs.img", "apt-layer stub initramfs\n")
            versions.append(version)
        }
        return versions.sorted { DebianVersion.compare($0, $1) < 0 }.last!
    }

    private func moveEtc(_ root: String) throws {
        if FileTree.exists("\(root)/usr/etc") {
            if FileTree.exists("\(root)/etc") { throw EngineError(.invalidArgument, "\(root) has both /etc and /usr/etc") }
            return
        }
        try move("\(root)/etc", "\(root)/usr/etc")
        try FileTree.write("\(root)/usr/etc/machine-id", "", mode: 0o444)
        if FileTree.exists("\(root)/usr/etc/fstab") { try FileTree.write("\(root)/usr/etc/fstab", "") }
    }

    /// Moves the dpkg database and debconf cache under /usr, leaving links in /var.
    private func movePackageState(_ root: String) throws {
        for (varPath, usrPath) in [("var/lib/dpkg", Layout.dpkgDatabase), ("var/cache/debconf", Layout.debconfCache)] {
            let source = "\(root)/\(varPath)"
            let destination = "\(root)/\(usrPath)"
            if FileTree.isDirectory(source) {
                if FileTree.exists(destination) { FileTree.remove(destination) }
                try FileTree.makeDirectory((destination as NSString).deletingLastPathComponent)
                try move(source, destination)
            } else if !FileTree.exists(destination) {
                try FileTree.makeDirectory(destination)
            }
            FileTree.remove(source)
            try FileTree.makeDirectory((source as NSString).deletingLastPathComponent)
            try symlink(relativeTarget(from: varPath, to: usrPath), at: source)
        }
    }

    private func makeVarLinks(_ root: String) throws {
        for (link, target) in Self.varLinks {
            let linkPath = "\(root)/\(link)"
            let targetPath = "\(root)/\(target)"
            if FileTree.isDirectory(linkPath) {
                if !FileTree.exists(targetPath) {
                    try move(linkPath, targetPath)
                } else {
                    FileTree.remove(linkPath)
                }
            } else {
                FileTree.remove(linkPath)
                try FileTree.makeDirectory(targetPath)
            }
            try symlink(relativeTarget(from: link, to: target), at: linkPath)
        }
        FileTree.remove("\(root)/media")
        try symlink("run/media", at: "\(root)/media")
        FileTree.remove("\(root)/ostree")
        try symlink("sysroot/ostree", at: "\(root)/ostree")
        try FileTree.makeDirectory("\(root)/sysroot")
    }

    /// Writes tmpfiles.d lines that recreate the image's /var, copies it to the factory, empties it.
    private func makeVarTmpfiles(_ root: String) throws {
        let declared = Self.declaredTmpfilesPaths(root)
        var lines = ["# Generated by apt-layer compose: recreates the image's /var at boot."]
        for relative in FileTree.walk("\(root)/var") {
            let path = "/var/\(relative)"
            guard !declared.contains(path), let info = FileTree.lstatInfo("\(root)/var/\(relative)") else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                lines.append(String(format: "d %@ %04o %d %d - -", path, info.st_mode & 0o7777, info.st_uid, info.st_gid))
            case S_IFLNK:
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/var/\(relative)")) ?? ""
                lines.append("L \(path) - - - - \(target)")
            case S_IFREG:
                lines.append("C \(path) - - - - /\(Layout.factoryVar)/\(relative)")
            default:
                continue
            }
        }
        try FileTree.makeDirectory("\(root)/usr/lib/tmpfiles.d")
        try FileTree.write("\(root)/\(Layout.baseTmpfiles)", lines.joined(separator: "\n") + "\n")
        let factory = "\(root)/\(Layout.factoryVar)"
        FileTree.remove(factory)
        try FileTree.makeDirectory((factory as NSString).deletingLastPathComponent)
        try FileTree.copy("\(root)/var", to: factory)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/var")) ?? [] {
            FileTree.remove("\(root)/var/\(name)")
        }
    }

    /// Paths that the tree's own tmpfiles.d snippets already declare (to avoid duplicate-line warnings).
    static func declaredTmpfilesPaths(_ root: String) -> Set<String> {
        var paths: Set<String> = []
        let dir = "\(root)/usr/lib/tmpfiles.d"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".conf") {
            for line in (FileTree.read("\(dir)/\(name)") ?? "").split(separator: "\n") where !line.hasPrefix("#") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count >= 2 { paths.insert(String(fields[1])) }
            }
        }
        return paths
    }

    /// Empties /dev, /run, /tmp, /proc, /sys and drops sockets, FIFOs and device nodes.
    private func resetSpecialDirectories(_ root: String) throws {
        for dir in ["dev", "run", "tmp", "proc", "sys"] {
            FileTree.remove("\(root)/\(dir)")
            try FileTree.makeDirectory("\(root)/\(dir)")
        }
        chmod("\(root)/tmp", 0o1777)
        for relative in FileTree.walk(root) {
            guard let info = FileTree.lstatInfo("\(root)/\(relative)") else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFSOCK, S_IFIFO, S_IFCHR, S_IFBLK:
                progress.message("dropping special file /\(relative)")
                unlink("\(root)/\(relative)")
            default:
                continue
            }
        }
    }

    private func move(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else { throw FileTree.posixError("move \(from) to \(to)") }
    }

    private func symlink(_ target: String, at path: String) throws {
        guard Glibc.symlink(target, path) == 0 else { throw FileTree.posixError("symlink \(path)") }
    }

    /// The relative link target from `link` to `target`, both relative to the root.
    func relativeTarget(from link: String, to target: String) -> String {
        let depth = link.split(separator: "/").count - 1
        return String(repeating: "../", count: depth) + target
    }
}
