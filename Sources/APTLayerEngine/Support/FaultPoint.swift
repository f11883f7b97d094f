import Foundation
import Glibc

/// Test-only crash points: when `APT_LAYER_TEST_FAULT` names a point (several: comma-separated),
/// the process kills itself there with SIGKILL, as a power cut or `kill -9` would. With
/// `APT_LAYER_TEST_FAULT_ONCE=DIR` each point fires once: a marker `DIR/NAME` is created first, and
/// a point whose marker exists is passed (a restarted process goes on). Crash-recovery tests and
/// the fleet simulation use them.
public enum FaultPoint {
    static let armed = Set((ProcessInfo.processInfo.environment["APT_LAYER_TEST_FAULT"] ?? "").split(separator: ",").map(String.init))
    static let onceDirectory = ProcessInfo.processInfo.environment["APT_LAYER_TEST_FAULT_ONCE"]

    /// Dies with SIGKILL when `name` is armed (and, in once mode, has not fired yet).
    public static func hit(_ name: String) {
        guard armed.contains(name) else { return }
        if let dir = onceDirectory {
            let fd = open("\(dir)/\(name)", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }
            fsync(fd)
            close(fd)
        }
        kill(getpid(), SIGKILL)
    }
}
