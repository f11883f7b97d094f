import APTLayerModel
import Foundation
import Glibc

/// A build's tree as an overlayfs mount: a prepared base checkout (``BaseCheckouts``) below, the
/// build's changes in `upper`. dpkg and maintainer scripts see a whole tree; every write lands in
/// `upper` (a file is copied up before it is changed, so no object of the repository can be
/// written through a hardlink), and the commit reads only `upper`.
struct OverlayTree {
    let lower: String
    let upper: String
    let root: String

    /// Mounts `lower` + a fresh `upper` at `root`, or returns nil when overlayfs cannot be used
    /// here (no overlay support, no privilege, a path overlayfs options cannot carry); the
    /// caller then builds in a full checkout.
    static func mount(lower: String, upper: String, scratch: String, at root: String) -> OverlayTree? {
        guard ![lower, upper, scratch, root].contains(where: { $0.contains(",") || $0.contains(":") || $0.contains("\\") }) else { return nil }
        // The upper root directory becomes the committed root: give it the base root's owner and mode.
        var info = stat()
        guard stat(lower, &info) == 0 else { return nil }
        // Whatever fails from here leaves no directory behind: the caller checks out into `root`.
        func undo() -> OverlayTree? {
            for dir in [upper, scratch] { FileTree.remove(dir) }
            rmdir(root)
            return nil
        }
        for dir in [upper, scratch, root] {
            guard (try? FileTree.makeDirectory(dir)) != nil else { return undo() }
        }
        guard Self.give(upper, ownerAndModeOf: info) else { return undo() }
        // Tests build the same change both ways and compare the trees; this is where a host
        // without overlayfs fails.
        if ProcessInfo.processInfo.environment["APT_LAYER_TEST_NO_OVERLAY"] != nil { return undo() }
        // Copies of whole files only (no metadata-only copy-ups, no redirects, no index): the
        // upper directory then holds every changed file's full content, as the commit needs.
        let options = "lowerdir=\(lower),upperdir=\(upper),workdir=\(scratch),redirect_dir=off,metacopy=off,index=off,xino=off"
        guard let result = try? Subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, root]), result.succeeded else {
            return undo()
        }
        return OverlayTree(lower: lower, upper: upper, root: root)
    }

    /// Unmounts the tree; its changes stay in ``upper``.
    /// Unmounts the build's overlay for good (not lazily: the commit then reads an upper directory
    /// nothing can write through any more). A mount briefly busy is tried again for up to 3 s: a
    /// mount namespace made at that moment elsewhere on the host (a bubblewrap sandbox being set
    /// up copies every mount, ours included, until it detaches the old root) holds a copy that the
    /// kernel's unmount propagation counts as busy; seen once in a parallel test run.
    func unmount() throws {
        for _ in 0..<30 {
            if umount2(root, 0) == 0 { return }
            guard errno == EBUSY else { break }
            usleep(100_000)
        }
        throw FileTree.posixError("unmount the build tree \(root)")
    }

    /// Puts `etc` back where OSTree keeps it: the build worked with `etc` at the root (as the
    /// prepared checkout has it), the commit needs `usr/etc`. Call after ``unmount()``.
    /// - Returns: the directories of ``upper`` made here rather than by overlayfs's copy-up
    ///   (which copies xattrs too), for ``Repo/writeCommit(overlay:onto:baseMetadata:parent:subject:metadata:cancellable:)``.
    @discardableResult
    func moveEtcToUsr() throws -> [String] {
        guard FileTree.lstatInfo("\(upper)/etc") != nil else { return [""] }
        var made = [""]
        if FileTree.lstatInfo("\(upper)/usr") == nil {
            made.append("usr")
            var info = stat()
            guard stat("\(lower)/usr", &info) == 0, mkdir("\(upper)/usr", 0o755) == 0, Self.give("\(upper)/usr", ownerAndModeOf: info)
            else { throw FileTree.posixError("create usr in the build's changes") }
        }
        guard rename("\(upper)/etc", "\(upper)/usr/etc") == 0 else { throw FileTree.posixError("move etc to usr/etc in the build's changes") }
        return made
    }

    /// Gives the directory at `path` the owner and mode in `info` (a directory of the base).
    private static func give(_ path: String, ownerAndModeOf info: stat) -> Bool {
        chown(path, info.st_uid, info.st_gid) == 0 && chmod(path, info.st_mode & 0o7777) == 0
    }

    /// Removes a build directory (or one a killed build left): its overlay first, then the tree.
    static func removeBuildDirectory(_ path: String) {
        unmountAll(under: path)
        FileTree.remove(path)
    }

    /// Detaches every mount at or under `path` (a killed build's overlay), deepest first.
    /// `path` may go through symlinks (`/ostree` is `sysroot/ostree` on a booted host): the mount
    /// table holds resolved paths, so both are compared; the build's own mountpoint `root` is
    /// detached by name first, as often as something is mounted there.
    static func unmountAll(under path: String) {
        for _ in 0..<8 where umount2("\(path)/root", Int32(MNT_DETACH)) == 0 {}
        var resolved = [path]
        if let real = realpath(path, nil) {
            resolved.append(String(cString: real))
            free(real)
        }
        // Read to the end: procfs files report size 0, and FileManager.contents(atPath:) stops
        // after one 4 KiB read, so with many mounts the build's own was not in what it returned
        // (seen as a leftover tree when the test suite mounts dozens of sysroots in parallel).
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/mountinfo") else { return }
        defer { try? handle.close() }
        let table = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        let points = table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            // mountinfo escapes space, tab, newline and backslash as \ooo.
            let point = Self.unescape(String(fields[4]))
            return resolved.contains { point == $0 || point.hasPrefix($0 + "/") } ? point : nil
        }
        for point in points.sorted(by: { $0.count > $1.count }) { umount2(point, Int32(MNT_DETACH)) }
    }

    /// mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
    static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3, let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
