import Foundation

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once per process: what tells one boot
/// of the host from the next (journal rows, the boot counter's fall-back record).
public enum BootID {
    /// The current boot's id, or `unknown` where the kernel does not provide one.
    public static let current: String =
        ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown")
        .trimmingCharacters(in: .whitespacesAndNewlines)
}
