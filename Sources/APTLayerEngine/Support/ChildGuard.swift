import APTLayerModel
import Foundation
import Glibc
import OSTree

/// Keeps a sysroot busy until every process an engine run started is gone, even when the run
/// itself was killed.
///
/// A locked run holds an exclusive `flock` on `STATE/children.lock` and hands that open file to
/// every child as descriptor 3 (apt keeps it for dpkg through `APT::Keep-Fds`). A flock belongs to
/// the open file, not to a process, so it stays held while any child still has the descriptor.
/// The next locked run takes the lock first; when it cannot, processes of a dead run are still
/// alive: it kills every process that holds the file (found through `/proc/PID/fd`) with its
/// process group, and waits until the lock is free before it touches the build tree.
final class ChildGuard {
    /// The descriptor children inherit as fd 3 while a locked run is active on this thread; -1
    /// otherwise. Per thread: one process may run engines on several sysroots at once (tests), and
    /// a locked run starts all its children from the thread that holds the lock.
    static var inherited: Int32 {
        get { (Thread.current.threadDictionary[key] as? NSNumber)?.int32Value ?? -1 }
        set { Thread.current.threadDictionary[key] = newValue >= 0 ? NSNumber(value: newValue) : nil }
    }
    private static let key = "apt-layer.child-guard"

    /// How long to wait for killed leftovers to exit before giving up.
    static let killTimeout: Double = 30

    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    /// Takes the guard for a run, killing leftovers of an earlier run that died.
    /// - Parameter report: told once when leftovers are found, with their pids.
    static func acquire(stateDirectory: String, report: ([pid_t]) -> Void) throws -> ChildGuard {
        let path = "\(stateDirectory)/children.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileTree.posixError("open \(path)") }
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        if !locked {
            var file = stat()
            fstat(fd, &file)
            let deadline = Date().addingTimeInterval(killTimeout)
            var holders: [pid_t] = []
            while !locked && Date() < deadline {
                // Only processes of a dead run are killed. This process's own children and
                // forks in its group are not: a child forked by another thread holds a copy of
                // every descriptor, this run's guard included, until it closes them before exec
                // (our spawn leads its own group by then). They are waited for. A run of this
                // process waits for its children before it releases the guard, so a holder a run
                // left behind is never our child. libostree's fsfreeze watchdog is a fork that
                // keeps every descriptor but calls daemon(3) (reparented, a session of its own):
                // it counts as foreign; it only matters while /boot is frozen, which the run that
                // froze it ends before it releases the guard.
                let found = Self.holders(device: file.st_dev, inode: file.st_ino).filter {
                    guard let holder = ProcessStat(pid: $0) else { return false }  // gone already
                    return holder.group != getpgrp() && holder.parent != getpid()
                }
                if holders.isEmpty, !found.isEmpty { report(found) }
                holders = found.isEmpty ? holders : found
                for pid in found {
                    let group = getpgid(pid)
                    if group > 1, group != getpgrp() { kill(-group, SIGKILL) }
                    kill(pid, SIGKILL)
                }
                usleep(20_000)
                locked = flock(fd, LOCK_EX | LOCK_NB) == 0
            }
            guard locked else {
                close(fd)
                throw EngineError(
                    .busy,
                    "busy: processes of an interrupted run (pids \(holders.map(String.init).joined(separator: ", "))) did not exit within \(Int(killTimeout)) s"
                )
            }
        }
        inherited = fd
        return ChildGuard(fd: fd)
    }

    /// Ends the run's hold: children were waited for and their groups killed.
    func release() {
        Self.inherited = -1
        close(fd)
    }

    /// Processes other than this one with an open descriptor on the file `device`/`inode`.
    static func holders(device: dev_t, inode: ino_t) -> [pid_t] {
        let me = getpid()
        var found: [pid_t] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), pid != me else { continue }
            let fdDirectory = "/proc/\(entry)/fd"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: fdDirectory)) ?? [] {
                var target = stat()
                if stat("\(fdDirectory)/\(name)", &target) == 0, target.st_dev == device, target.st_ino == inode {
                    found.append(pid)
                    break
                }
            }
        }
        return found
    }
}
