import APTLayerModel
import Foundation
import Glibc

/// Test-only crash points: when `APT_LAYER_TEST_FAULT` names a point (several: comma-separated),
/// the process kills itself there with SIGKILL, as a power cut or `kill -9` would. With
/// `APT_LAYER_TEST_FAULT_ONCE=DIR` each point fires once: a marker `DIR/NAME` is created first, and
/// a point whose marker exists is passed (a restarted process goes on). Crash-recovery tests and
/// the fleet simulation use them.
///
/// `APT_LAYER_TEST_PAUSE=NAME` with `APT_LAYER_TEST_PAUSE_DIR=DIR` pauses at a point instead:
/// the process creates `DIR/NAME.paused` and waits (at most two minutes) until `DIR/NAME.go`
/// exists, so a test can change the world (fill a filesystem) at exactly that step.
public enum FaultPoint {
    static let paused = ProcessInfo.processInfo.environment["APT_LAYER_TEST_PAUSE"]
    static let pauseDirectory = ProcessInfo.processInfo.environment["APT_LAYER_TEST_PAUSE_DIR"]
    static let armed = Set((ProcessInfo.processInfo.environment["APT_LAYER_TEST_FAULT"] ?? "").split(separator: ",").map(String.init))
    static let onceDirectory = ProcessInfo.processInfo.environment["APT_LAYER_TEST_FAULT_ONCE"]

    /// Dies with SIGKILL when `name` is armed (and, in once mode, has not fired yet).
    public static func hit(_ name: String) {
        if name == paused, let dir = pauseDirectory { pause(name, in: dir) }
        guard armed.contains(name) else { return }
        if let dir = onceDirectory {
            let fd = open("\(dir)/\(name)", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return }
            fsync(fd)
            close(fd)
        }
        kill(getpid(), SIGKILL)
    }

    private static func pause(_ name: String, in dir: String) {
        close(open("\(dir)/\(name).paused", O_CREAT | O_WRONLY | O_CLOEXEC, 0o644))
        for _ in 0..<1200 where access("\(dir)/\(name).go", F_OK) != 0 { usleep(100_000) }
    }
}
