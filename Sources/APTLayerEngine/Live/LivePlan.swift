import APTLayerModel
import Foundation
import Glibc

/// What one live apply will do, decided before anything changes and written to
/// `/run/apt-layer/live-plan.json`: the helper (``LiveHelper``) carries it out, and an interrupted
/// apply resumes with the same plan, so decisions that depend on the state before the apply (which
/// `/etc` files the admin edited) do not change half-way.
struct LivePlan: Codable, Equatable {
    /// One path of `/usr` to make equal to the target commit's.
    struct Step: Codable, Equatable {
        enum Action: String, Codable {
            /// Check the target's entry out (a directory with everything under it).
            case copy
            /// Remove what is there, then check the target's entry out (its type changed).
            case replace
            /// Remove the entry (the target has none).
            case remove
        }
        var action: Action
        /// Absolute path, `/usr/bin/x`.
        var path: String
        /// Whether the target's entry is a directory.
        var directory: Bool
        /// Bytes a copy writes (regular files; directories count their files' steps).
        var size: UInt64
    }

    /// One `/etc` path the apply writes or removes.
    struct EtcStep: Codable, Equatable {
        enum Action: String, Codable {
            /// Check the target's `usr/etc` entry out to `/etc` (a directory: created, not recursed).
            case write
            /// Remove the `/etc` entry (the admin never edited it; the target has none).
            case remove
        }
        var action: Action
        /// Path below `/etc`.
        var path: String
        /// Whether `/etc` has the entry now (a write then replaces an unedited default).
        var existed: Bool
        var directory: Bool
    }

    /// The booted deployment, `CHECKSUM.SERIAL`.
    var booted: String
    /// The booted commit.
    var bootedCommit: String
    /// The commit `/usr` shows before the apply.
    var source: String
    /// The commit the apply makes `/usr` show.
    var target: String
    /// `/usr` outside the dpkg database, in order (removals deepest first, then copies).
    var usr: [Step]
    /// The dpkg database's changes, `status` last.
    var packageDatabase: [Step]
    var etc: [EtcStep]
    /// `/etc` files the admin edited that the target changes: kept.
    var keptEtc: [String]
    /// Account lines to append to `/etc/{passwd,group,shadow,gshadow}` (names not yet there).
    var accounts: [String: [String]]
    /// tmpfiles.d files (absolute) to run `systemd-tmpfiles --create` on.
    var tmpfiles: [String]
    /// Whether unit files changed (`systemctl daemon-reload`).
    var unitsChanged: Bool
    /// Units the new packages enable (new `*.wants/` links).
    var enabledUnits: [String]
    /// Start ``enabledUnits``.
    var startServices: Bool
    /// The packages the live `/usr` will differ by from the booted commit.
    var addedPackages: [String]
    var changedPackages: [String]
    var removedPackages: [String]
    /// /usr is already a transient overlay that `ostree admin unlock --transient` made.
    var externalOverlay: Bool
}

extension Engine {
    /// The file a booted host's apply-live state is in (`LiveState`; replaced by rename at every
    /// step): the agent's status cache watches it.
    public static var liveStatePath: String { LiveFiles.state }
}

/// Where a booted host keeps its live state: `/run/apt-layer`, gone at the next boot.
enum LiveFiles {
    static let directory = "/run/apt-layer"
    static let state = "\(directory)/live.json"
    static let plan = "\(directory)/live-plan.json"
    /// The helper's output when it runs as a systemd unit.
    static let helperLog = "\(directory)/live-helper.log"
    /// The ref that keeps the live commit's objects from pruning while `/usr` shows it.
    static let ref = "apt-layer/live"
    /// libostree's prefix for transient overlays; its tmpfiles.d removes them at boot.
    static let overlayPrefix = "/var/tmp/ostree-unlock-ovl."

    static func read<T: Decodable>(_ type: T.Type, _ path: String) -> T? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(T.self, from: $0) }
    }

    static func write<T: Encodable>(_ value: T, _ path: String) throws {
        try FileTree.makeDirectory(directory, mode: 0o700)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try FileTree.replaceDurably(path, Array(try encoder.encode(value)))
    }

    /// The live state of the booted deployment `booted` (`CHECKSUM.SERIAL`); nil when there is
    /// none for this boot.
    static func state(booted: String) -> LiveState? {
        guard let state = read(LiveState.self, state), state.booted == booted else { return nil }
        return state
    }

    /// libostree's run-state flag for a transiently unlocked booted deployment (its content is the
    /// overlay directory, as `ostree admin unlock --transient` writes it).
    static func unlockFlag(booted: String) -> String { "/run/ostree/deployment-state/\(booted)/unlocked-transient" }
}
