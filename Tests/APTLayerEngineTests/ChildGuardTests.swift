import Dispatch
import Foundation
import Glibc
import OSTree
import Synchronization
import Testing

@testable import APTLayerEngine

/// The child guard kills processes a dead run left behind, and only those.
@Suite("child guard", .tags(.fast))
struct ChildGuardTests {
    /// A child of this process that holds the guard file (as a child forked by another thread does
    /// until it closes its descriptors before exec) is waited for, not killed: a test bed's `cp`
    /// was killed by another bed's guard while it was between fork and exec (CI, stop 35).
    @Test func aChildOfThisProcessHoldingTheLockIsWaitedForNotKilled() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/children.lock"
        let lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(lock >= 0)
        try #require(flock(lock, LOCK_EX | LOCK_NB) == 0)
        var file = stat()
        fstat(lock, &file)

        // A child that inherits the locked description as descriptor 3, as a run's children do.
        let outcome = Mutex<Subprocess.Result?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            ChildGuard.inherited = lock
            let result = try? Subprocess.run(["sleep", "30"])
            ChildGuard.inherited = -1
            outcome.withLock { $0 = result }
            finished.signal()
        }
        var child: pid_t?
        for _ in 0..<500 where child == nil {
            child = ChildGuard.holders(device: file.st_dev, inode: file.st_ino).first
            if child == nil { usleep(10_000) }
        }
        let pid = try #require(child)
        #expect(ProcessStat(pid: pid)?.parent == getpid())
        close(lock)

        // The child ends on its own a second later; the guard must wait for it.
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { _ = kill(pid, SIGTERM) }
        let reported = Mutex<[pid_t]>([])
        let taken = try ChildGuard.acquire(stateDirectory: directory) { pids in reported.withLock { $0 = pids } }
        taken.release()
        finished.wait()
        // Not `isEmpty`: run beside suites that deploy, libostree's fsfreeze watchdog (a daemon(3)
        // fork of this process, reparented, in a session of its own) can hold a copy of the lock
        // for a moment and is reported as a foreign holder.
        #expect(!reported.withLock { $0 }.contains(pid))
        #expect(outcome.withLock { $0?.signal } == SIGTERM)
    }

    /// A holder that is not this process's child (an orphan of a dead run) is killed with its group.
    @Test func aHolderThatIsNotOurChildIsKilled() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The shell waits for the sleep: the group kill at its exit would take a subshell that had
        // not yet left the group.
        _ = try Subprocess.check([
            "sh", "-c",
            "(setsid flock \(directory)/children.lock sleep 297.1 >/dev/null 2>&1 &); for i in $(seq 50); do pgrep -f '^sleep 297.1' >/dev/null && break; sleep 0.1; done",
        ])
        var file = stat()
        var holders: [pid_t] = []
        for _ in 0..<500 where holders.isEmpty {
            if stat("\(directory)/children.lock", &file) == 0 { holders = ChildGuard.holders(device: file.st_dev, inode: file.st_ino) }
            if holders.isEmpty { usleep(10_000) }
        }
        try #require(!holders.isEmpty)
        let reported = Mutex<[pid_t]>([])
        let taken = try ChildGuard.acquire(stateDirectory: directory) { pids in reported.withLock { $0 = pids } }
        taken.release()
        #expect(!reported.withLock { $0 }.isEmpty)
        #expect(ChildGuard.holders(device: file.st_dev, inode: file.st_ino).isEmpty)
    }

    private static func temporaryDirectory() throws -> String {
        var template = Array("/tmp/apt-layer-guard.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        return String(cString: made)
    }
}
