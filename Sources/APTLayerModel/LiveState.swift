import Foundation

/// What `apply-live` and `install --apply-live` may do beyond adding packages.
public struct LiveOptions: Sendable, Equatable, Hashable, Codable {
    /// Allow removed and changed packages (and a changed base) to be applied live.
    public var allowReplacement = false
    /// Start the services the new packages enable (`systemctl start`), not only report them.
    public var startServices = false

    /// Creates options.
    public init(allowReplacement: Bool = false, startServices: Bool = false) {
        self.allowReplacement = allowReplacement
        self.startServices = startServices
    }
}

/// The steps of one live apply, in the order the helper runs them (docs/apply-live.md draws them).
/// Each step is idempotent, so an interrupted apply resumes from ``planned`` with the same plan.
public enum LivePhase: String, Sendable, Codable, CaseIterable {
    /// The plan is written and the target recorded as in progress; nothing changed yet.
    case planned
    /// `/usr` is a transient overlay (mounted now, or by an earlier apply of this boot).
    case overlay
    /// `/usr` is being made equal to the target, the dpkg database left out.
    case usr
    /// `/etc` files the target adds or changes are being copied where the admin has not edited them.
    case etc
    /// Accounts the packages' scripts created are being appended to `/etc`.
    case accounts
    /// The dpkg database is being made the target's (`info/*`, then `status`).
    case packageDatabase
    /// `systemd-tmpfiles --create` on the new tmpfiles.d files.
    case tmpfiles
    /// Every step is done: `/usr` shows the target.
    case done
}

/// One file the live apply wrote to `/etc`, so `--reset` can undo exactly that where the admin has
/// not touched it since.
public struct LiveEtcWrite: Sendable, Codable, Equatable {
    /// The path below `/etc`.
    public var path: String
    /// The sha256 of what was written (of the link target for a symlink).
    public var sha256: String
    /// Whether `/etc` had the file before (the live apply replaced an unedited default).
    public var replaced: Bool

    /// Creates a record.
    public init(path: String, sha256: String, replaced: Bool) {
        self.path = path
        self.sha256 = sha256
        self.replaced = replaced
    }
}

/// What the running system carries live on top of its booted deployment: kept in
/// `/run/apt-layer/live.json`, so it lasts exactly as long as the boot and survives an agent restart.
public struct LiveState: Sendable, Codable, Equatable {
    /// The booted deployment it belongs to, `CHECKSUM.SERIAL`.
    public var booted: String
    /// The commit `/usr` shows; nil when nothing was applied yet.
    public var commit: String?
    /// The commit an unfinished apply is moving to (nil when none is unfinished).
    public var inProgress: String?
    /// The step the unfinished (or last) apply reached.
    public var phase: LivePhase
    /// The overlay's directory (`upper`, `work`) under /var/tmp.
    public var overlay: String?
    /// Packages the live `/usr` has beyond the booted commit (`name version`).
    public var addedPackages: [String] = []
    /// Packages the live `/usr` has in another version (`name old → new`).
    public var changedPackages: [String] = []
    /// Packages of the booted commit the live `/usr` no longer has.
    public var removedPackages: [String] = []
    /// `/etc` files the admin had edited, left as they were.
    public var keptEtc: [String] = []
    /// `/etc` files the live applies wrote.
    public var etcWrites: [LiveEtcWrite] = []
    /// Units the new packages enable that were not started (no `--start`, or no systemd).
    public var notStarted: [String] = []
    /// Units started with `--start`.
    public var started: [String] = []

    /// Creates a state.
    public init(booted: String, commit: String? = nil, inProgress: String? = nil, phase: LivePhase = .planned, overlay: String? = nil) {
        self.booted = booted
        self.commit = commit
        self.inProgress = inProgress
        self.phase = phase
        self.overlay = overlay
    }

    /// Whether anything is live (a completed apply to a commit, or an unfinished one).
    public func isLive(bootedChecksum: String) -> Bool {
        inProgress != nil || (commit != nil && commit != bootedChecksum)
    }
}
