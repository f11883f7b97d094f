import Glibc

/// Whether a local caller's uid may read a host path it asks the agent (root) to install: the
/// agent reads it as root, so without this check a `uid:N` caller could learn through the
/// agent's different answers which root-only files exist (issue 26). Permission bits and ACL-free
/// ownership, as the kernel checks them for that uid and its groups: search on every directory
/// of the resolved path, read on the file.
enum HostPathAccess {
    /// True when `uid` could open `path` for reading.
    static func readable(_ path: String, uid: uid_t) -> Bool {
        if uid == 0 { return true }
        guard let resolved = realpath(path, nil) else { return false }
        defer { free(resolved) }
        let full = String(cString: resolved)
        let groups = Self.groups(of: uid)
        func allows(_ info: stat, _ bit: mode_t) -> Bool {
            if info.st_uid == uid { return info.st_mode & (bit << 6) != 0 }
            if groups.contains(info.st_gid) { return info.st_mode & (bit << 3) != 0 }
            return info.st_mode & bit != 0
        }
        var directory = ""
        for component in full.split(separator: "/").dropLast() {
            directory += "/\(component)"
            var info = stat()
            guard stat(directory, &info) == 0, allows(info, mode_t(S_IXOTH)) else { return false }
        }
        var info = stat()
        guard stat(full, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return allows(info, mode_t(S_IROTH))
    }

    /// The primary and supplementary groups of `uid`'s account (only the primary one, or none,
    /// when the account is unknown).
    static func groups(of uid: uid_t) -> Set<gid_t> {
        guard let account = getpwuid(uid) else { return [] }
        let primary = account.pointee.pw_gid
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(account.pointee.pw_name, primary, &list, &count) < 0 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(account.pointee.pw_name, primary, &list, &count)
        }
        return Set(list.prefix(Int(max(count, 0)))).union([primary])
    }
}
