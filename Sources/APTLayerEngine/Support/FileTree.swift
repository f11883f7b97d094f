import APTLayerModel
import Foundation
import Glibc

/// Filesystem helpers for working on checked-out trees.
enum FileTree {
    /// `lstat` of a path, or nil when it does not exist.
    static func lstatInfo(_ path: String) -> stat? {
        var s = stat()
        return lstat(path, &s) == 0 ? s : nil
    }

    static func exists(_ path: String) -> Bool { lstatInfo(path) != nil }

    /// Creates a fresh directory `PREFIXxxxxxx` in `parent` (made if missing) and returns its path.
    static func temporaryDirectory(in parent: String, prefix: String) throws -> String {
        try makeDirectory(parent)
        var template = Array("\(parent)/\(prefix)XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw posixError("create a directory in \(parent)") }
        return String(cString: made)
    }

    static func isDirectory(_ path: String) -> Bool {
        guard let s = lstatInfo(path) else { return false }
        return (s.st_mode & S_IFMT) == S_IFDIR
    }

    /// Every path under `root` (relative, without a leading slash), not following symlinks.
    static func walk(_ root: String) -> [String] {
        var result: [String] = []
        func visit(_ relative: String) {
            let full = relative.isEmpty ? root : root + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: full) else { return }
            for name in names.sorted() {
                let child = relative.isEmpty ? name : relative + "/" + name
                result.append(child)
                if isDirectory(root + "/" + child) { visit(child) }
            }
        }
        visit("")
        return result
    }

    /// Replaces every multiply-linked regular file under `root` with a private copy, so writes into it
    /// cannot reach the repository object it was hardlinked from.
    static func breakHardlinks(under root: String) throws {
        guard let s = lstatInfo(root) else { return }
        if (s.st_mode & S_IFMT) == S_IFREG {
            if s.st_nlink > 1 { try copyUp(root, s) }
            return
        }
        for relative in walk(root) {
            let path = root + "/" + relative
            guard let info = lstatInfo(path), (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink > 1 else { continue }
            try copyUp(path, info)
        }
    }

    private static func copyUp(_ path: String, _ info: stat) throws {
        let temporary = path + ".apt-layer-copyup"
        let source = open(path, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw posixError("open \(path)") }
        defer { close(source) }
        let target = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard target >= 0 else { throw posixError("create \(temporary)") }
        var ok = false
        defer {
            close(target)
            if !ok { unlink(temporary) }
        }
        var remaining = Int(info.st_size)
        while remaining > 0 {
            let n = sendfile(target, source, nil, remaining)
            if n < 0 { throw posixError("copy \(path)") }
            if n == 0 { break }
            remaining -= n
        }
        guard fchown(target, info.st_uid, info.st_gid) == 0, fchmod(target, info.st_mode & 0o7777) == 0 else {
            throw posixError("set owner/mode of \(path)")
        }
        var times = [info.st_atim, info.st_mtim]
        futimens(target, &times)
        guard rename(temporary, path) == 0 else { throw posixError("replace \(path)") }
        ok = true
    }

    /// Removes a tree (`rm -rf`: Foundation's recursive removal is an order of magnitude slower on
    /// checkouts of thousands of files). Deployments are mutable in tests
    /// (`OSTREE_SYSROOT_DEBUG=mutable-deployments`) and temporary trees never get immutable bits.
    static func remove(_ path: String) {
        guard let info = lstatInfo(path) else { return }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            unlink(path)
            return
        }
        _ = try? Subprocess.run(["rm", "-rf", "--one-file-system", path])
    }

    /// Copies a tree preserving owners, modes, links and xattrs.
    static func copy(_ source: String, to destination: String) throws {
        try Subprocess.check(["cp", "-a", "--reflink=auto", source, destination])
    }

    static func read(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    static func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
            chmod(path, mode_t(mode))
        } catch {
            throw EngineError.wrap(error, "write \(path)")
        }
    }

    /// Appends `text` to `path`, creating it (0644) when it does not exist.
    static func append(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError("open \(path)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw posixError("write \(path)") }
    }

    static func symlink(_ target: String, at path: String) throws {
        guard Glibc.symlink(target, path) == 0 else { throw posixError("symlink \(path)") }
    }

    static func makeDirectory(_ path: String, mode: Int = 0o755) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw EngineError.wrap(error, "create \(path)")
        }
    }

    /// `what` failed with the current `errno`, kept as the underlying `POSIXError`.
    static func posixError(_ what: String) -> EngineError {
        let code = errno
        return EngineError(.system, "\(what): \(String(cString: strerror(code)))", underlying: POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO))
    }
}

extension FileTree {
    /// Replaces a file's contents atomically, keeping its owner and mode (or 0644 root for a new file).
    static func replaceContents(_ path: String, _ text: String) throws {
        let info = lstatInfo(path)
        let temporary = path + ".apt-layer-new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw posixError("create \(temporary)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let owned = fchown(fd, info?.st_uid ?? 0, info?.st_gid ?? 0) == 0
        let moded = fchmod(fd, (info?.st_mode ?? 0o644) & 0o7777) == 0
        close(fd)
        guard written == bytes.count, owned, moded, rename(temporary, path) == 0 else {
            let error = posixError("write \(path)")
            unlink(temporary)
            throw error
        }
    }

    /// Replaces a file with `bytes` so that a power cut leaves the old file or the new one: written
    /// to a temporary file beside it, flushed, renamed over it, and the directory flushed (0644).
    static func replaceDurably(_ path: String, _ bytes: [UInt8]) throws {
        let temporary = "\(path).apt-layer-new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError("create \(temporary)") }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            let error = posixError("write \(path)")
            unlink(temporary)
            throw error
        }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}
