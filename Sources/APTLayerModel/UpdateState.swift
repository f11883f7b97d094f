/// Where the fleet update driver is. Journaled before every move (``canMove(to:)`` says which
/// moves are legal); the picture is in `docs/fleet.md`.
///
/// ```
/// idle ─► checking ─► up-to-date
///                  └► update-available ─► staging ─► staged ─► waiting ─► finalizing ─► rebooting
/// rebooting ─(boot)─► verifying ─► healthy
///                              └► rolling-back ─► rebooting ─(boot)─► failed (release denylisted)
/// ```
public enum UpdateState: String, Sendable, Codable, CaseIterable, Hashable {
    /// No policy yet, or nothing to do until the next poll.
    case idle
    /// Fetching and verifying the policy.
    case checking
    /// The host runs the policy's release (or waits for a reason that is not a new release).
    case upToDate = "up-to-date"
    /// The policy's release differs from the booted one and is not denylisted.
    case updateAvailable = "update-available"
    /// Pulling the release's commit, re-applying the layered packages, staging with finalization
    /// locked.
    case staging
    /// The release is staged (finalization locked).
    case staged
    /// Staged, waiting for its wave start, a maintenance window and a reboot slot.
    case waiting
    /// Reboot slot held: unlocking finalization.
    case finalizing
    /// The reboot command has run (into the release, or back after a rollback).
    case rebooting
    /// Booted: checking the booted commit, then the policy's health checks and the settle time.
    case verifying
    /// The release booted and passed its health checks; the slot is released.
    case healthy
    /// The release failed verification: the previous deployment becomes the default.
    case rollingBack = "rolling-back"
    /// A step failed, or the host rolled back; the reason says which. Polling continues.
    case failed

    /// Whether `next` may follow this state.
    public func canMove(to next: UpdateState) -> Bool {
        switch (self, next) {
        case (.idle, .checking), (.upToDate, .checking), (.healthy, .checking), (.failed, .checking): true
        case (.checking, .upToDate), (.checking, .updateAvailable), (.checking, .idle): true
        // A newer policy may change the release at any point before finalization: check again
        // (from `staging` after a restart that finds another release, or the release denylisted).
        case (.updateAvailable, .checking), (.staging, .checking), (.staged, .checking), (.waiting, .checking): true
        case (.updateAvailable, .staging), (.staging, .staged), (.staging, .failed): true
        case (.staged, .waiting), (.waiting, .finalizing): true
        // A failing pre-reboot hook postpones the reboot: the slot goes back, the host waits.
        case (.finalizing, .rebooting), (.finalizing, .failed), (.finalizing, .waiting): true
        case (.rebooting, .verifying), (.rebooting, .failed): true
        case (.verifying, .healthy), (.verifying, .rollingBack): true
        case (.rollingBack, .rebooting), (.rollingBack, .failed): true
        default: false
        }
    }

    /// Every legal move, for documentation and tests.
    public static var transitions: [(UpdateState, UpdateState)] {
        allCases.flatMap { from in allCases.filter { from.canMove(to: $0) }.map { (from, $0) } }
    }
}
