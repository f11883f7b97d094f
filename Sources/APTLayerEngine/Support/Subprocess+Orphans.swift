import APTLayerModel
import Glibc
import OSTree

extension Subprocess {
    /// Kills the members of process group `group` whose parent left it: orphans, reparented to
    /// init or a subreaper while the group's leader still runs. The outer bubblewrap of a dpkg
    /// call killed while its pid-1 child still waits in bwrap's setup handshake (before
    /// `--die-with-parent` is armed) leaves such an orphan, holding apt's status pipe: apt-get
    /// then waits for it forever (issue 26). Killing the namespace's pid 1 ends the sandbox, apt
    /// reads end of file and reports the failed dpkg call. Returns what was killed.
    @discardableResult
    static func killOrphans(ofGroup group: pid_t) -> [ProcessStat] {
        let members = ProcessStat.all().filter { $0.group == group }
        let pids = Set(members.map(\.pid))
        let orphans = members.filter { $0.pid != group && !pids.contains($0.parent) }
        for orphan in orphans { kill(orphan.pid, SIGKILL) }
        return orphans
    }
}
