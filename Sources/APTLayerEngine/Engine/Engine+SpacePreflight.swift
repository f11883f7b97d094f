import APTLayerModel
import Foundation
import Glibc
import OSTree

/// What writing a deployment of a commit will take on `/boot` and on the sysroot's filesystem,
/// against what they have free: checked before a deployment is written or staged, so that a full
/// `/boot` is a one-line refusal now instead of a failed finalization at shutdown (libostree copies
/// the kernel and initramfs into `/boot` only then, for a staged deployment).
struct SpacePreflight: Equatable, Sendable {
    /// Bytes the new deployment adds to `/boot`: its kernel and initramfs when no deployment that
    /// stays has the same ones, rounded up to blocks, plus the new boot-loader entries.
    var bootNeeded: UInt64
    /// Bytes the deployment's own writes on the sysroot's filesystem take: the copy of `/etc`
    /// (the objects are in the repository already, checked out as hard links).
    var sysrootNeeded: UInt64
    /// Free bytes on `/boot` and on the sysroot's filesystem (for an unprivileged writer: `f_bavail`).
    var bootFree: UInt64
    var sysrootFree: UInt64
    /// `/boot` and the deployments on one filesystem (both needs come out of one free count).
    var sameFilesystem: Bool
    /// What removing the rollback deployments would give back on `/boot` (named in the error).
    var rollbackWouldFree: UInt64

    /// Room the boot-loader entries of a deployment write take (a `loader.N` directory of BLS
    /// entries, each a block), with slack for the filesystem's own metadata.
    static let bootEntrySlack: UInt64 = 1 << 20

    /// The one-line refusal, or nil when both fit.
    var refusal: String? {
        // What is needed rounded up, what is free rounded down: the numbers never hide a shortfall.
        let need = { (bytes: UInt64) in "need \((bytes + (1 << 20) - 1) >> 20) MiB" }
        let have = { (bytes: UInt64) in "have \(bytes >> 20) MiB" }
        if sameFilesystem {
            guard bootNeeded + sysrootNeeded > bootFree else { return nil }
            return "not enough space on /boot: \(need(bootNeeded + sysrootNeeded)), \(have(bootFree))" + hint
        }
        if bootNeeded > bootFree { return "not enough space on /boot: \(need(bootNeeded)), \(have(bootFree))" + hint }
        if sysrootNeeded > sysrootFree { return "not enough space on /sysroot: \(need(sysrootNeeded)), \(have(sysrootFree))" }
        return nil
    }

    private var hint: String {
        rollbackWouldFree > 0
            ? " (removing the rollback deployment would free \((rollbackWouldFree + (1 << 20) - 1) >> 20) MiB: apt-layer cleanup --rollback)"
            : ""
    }

    /// `bytes` rounded up to whole blocks of `block` bytes.
    static func blocks(_ bytes: UInt64, _ block: UInt64) -> UInt64 { block == 0 ? bytes : (bytes + block - 1) / block * block }

    /// What a kernel and initramfs take in whole blocks of `block` bytes.
    static func blocks(of files: Repo.BootFiles, _ block: UInt64) -> UInt64 {
        blocks(files.kernel.size, block) + blocks(files.initramfs?.size ?? 0, block)
    }
}

extension Engine {
    /// Refuses, changing nothing, when the deployment of `checksum` would not fit: on `/boot` the
    /// kernel and initramfs libostree will copy there (at finalization, for a staged one) unless a
    /// deployment that stays already has them; on the sysroot the new `/etc`. Deployments that
    /// this change prunes are not counted as giving space back: libostree 2022.7 installs the new
    /// boot files before it deletes boot directories nothing uses, so the peak is old plus new.
    /// A tree without a kernel in `usr/lib/modules` has nothing for `/boot`.
    func checkSpace(_ sysroot: Sysroot, checksum: String, merge: Deployment?) throws {
        let preflight: SpacePreflight
        do { preflight = try spacePreflight(sysroot, checksum: checksum, merge: merge) } catch {
            throw EngineError.wrap(error, "check free space")
        }
        if let refusal = preflight.refusal {
            progress.message(refusal)
            throw EngineError(.refused, refusal, underlying: POSIXError(.ENOSPC))
        }
    }

    func spacePreflight(_ sysroot: Sysroot, checksum: String, merge: Deployment?) throws -> SpacePreflight {
        let repo = try sysroot.repo()
        let bootDirectory = "\(options.sysroot)/boot"
        let deployDirectory = "\(options.sysroot)/ostree/deploy"
        // Before the first deployment neither may exist yet: what will hold them is the sysroot's.
        let deploy = try Self.filesystem(FileTree.isDirectory(deployDirectory) ? deployDirectory : options.sysroot)
        let boot = FileTree.isDirectory(bootDirectory) ? try Self.filesystem(bootDirectory) : deploy
        // Boot files now in /boot: every deployment's but a staged one's (copied at finalization).
        let installed = sysroot.deployments.filter { !$0.isStaged }
        var bootFiles: [String: Repo.BootFiles] = [:]
        // A deployment whose commit cannot be read is counted as having nothing in /boot (its boot
        // files then do not spare the new ones, the safe side) rather than refusing every change.
        for d in installed where bootFiles[d.checksum] == nil { bootFiles[d.checksum] = try? repo.bootFiles(in: d.checksum) }
        var bootNeeded: UInt64 = 0
        if let new = try repo.bootFiles(in: checksum), !bootFiles.values.contains(where: { $0.sameContent(as: new) }) {
            bootNeeded = SpacePreflight.blocks(of: new, boot.block)
        }
        bootNeeded += SpacePreflight.bootEntrySlack
        // Rollback deployments: not the booted one, not the default, not pinned; their boot files
        // when nothing else kept uses the same ones.
        let booted = sysroot.booted
        let rollbacks = installed.dropFirst().filter { d in !(booted.map { d.isSame(as: $0) } ?? false) && !d.isPinned }
        let kept = installed.filter { d in !rollbacks.contains { $0.isSame(as: d) } }
        var rollbackWouldFree: UInt64 = 0
        var counted: [Repo.BootFiles] = []
        for d in rollbacks {
            guard let files = bootFiles[d.checksum], !counted.contains(where: { $0.sameContent(as: files) }) else { continue }
            guard !kept.contains(where: { bootFiles[$0.checksum].map { $0.sameContent(as: files) } ?? false }) else { continue }
            counted.append(files)
            rollbackWouldFree += SpacePreflight.blocks(of: files, boot.block)
        }
        // The new deployment's /etc: a copy of the merge deployment's (none counted without one).
        let etc = merge.map { "\(sysroot.directory(of: $0))/etc" }
        let sysrootNeeded = etc.map { Self.bytes(under: $0, block: deploy.block) } ?? 0
        return SpacePreflight(
            bootNeeded: bootNeeded, sysrootNeeded: sysrootNeeded, bootFree: boot.free, sysrootFree: deploy.free,
            sameFilesystem: boot.device == deploy.device, rollbackWouldFree: rollbackWouldFree)
    }

    /// The filesystem holding `path`: its device, block size and bytes free to an unprivileged writer.
    static func filesystem(_ path: String) throws -> (device: UInt64, block: UInt64, free: UInt64) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileTree.posixError("stat \(path)") }
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { throw FileTree.posixError("statvfs \(path)") }
        return (UInt64(info.st_dev), UInt64(fs.f_bsize), UInt64(fs.f_bavail) * UInt64(fs.f_frsize))
    }

    /// Bytes the regular files and directories under `root` take, each rounded up to blocks.
    static func bytes(under root: String, block: UInt64) -> UInt64 {
        var total: UInt64 = 0
        for relative in FileTree.walk(root) {
            var info = stat()
            guard lstat("\(root)/\(relative)", &info) == 0 else { continue }
            let kind = info.st_mode & S_IFMT
            if kind == S_IFREG || kind == S_IFDIR { total += SpacePreflight.blocks(UInt64(info.st_size), block) }
        }
        return total
    }
}
