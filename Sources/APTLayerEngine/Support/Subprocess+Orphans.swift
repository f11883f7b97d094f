import Glibc

extension Subprocess {
    /// A process as `/proc/PID/stat` shows it.
    struct ProcessEntry {
        var pid: pid_t
        var name: String
        var parent: pid_t
        var group: pid_t
    }

    /// Every process this one can see.
    static func processes() -> [ProcessEntry] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var entries: [ProcessEntry] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = pid_t(name), let stat = FileTree.read("/proc/\(name)/stat") else { continue }
            // "PID (NAME) STATE PPID PGRP ...": the name may hold spaces and parentheses.
            guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, let parent = pid_t(fields[1]), let group = pid_t(fields[2]) else { continue }
            entries.append(ProcessEntry(pid: pid, name: String(stat[stat.index(after: open)..<close]), parent: parent, group: group))
        }
        return entries
    }

    /// Kills the members of process group `group` whose parent left it: orphans, reparented to
    /// init or a subreaper while the group's leader still runs. The outer bubblewrap of a dpkg
    /// call killed while its pid-1 child still waits in bwrap's setup handshake (before
    /// `--die-with-parent` is armed) leaves such an orphan, holding apt's status pipe: apt-get
    /// then waits for it forever (issue 26). Killing the namespace's pid 1 ends the sandbox, apt
    /// reads end of file and reports the failed dpkg call. Returns what was killed.
    @discardableResult
    static func killOrphans(ofGroup group: pid_t) -> [ProcessEntry] {
        let members = processes().filter { $0.group == group }
        let pids = Set(members.map(\.pid))
        let orphans = members.filter { $0.pid != group && !pids.contains($0.parent) }
        for orphan in orphans { kill(orphan.pid, SIGKILL) }
        return orphans
    }
}
