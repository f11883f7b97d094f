import Foundation
import Glibc

/// Test-only crash points: when `APT_LAYER_TEST_FAULT` names a point, the process kills itself
/// there with SIGKILL, as a power cut or `kill -9` would. Crash-recovery tests use it.
public enum FaultPoint {
    static let armed = ProcessInfo.processInfo.environment["APT_LAYER_TEST_FAULT"]

    /// Dies with SIGKILL when `name` is armed.
    public static func hit(_ name: String) {
        if armed == name { kill(getpid(), SIGKILL) }
    }
}
