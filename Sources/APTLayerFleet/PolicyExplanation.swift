import Foundation

/// The one thing a host is waiting for before it finalizes the policy's release, in the order the
/// checks are made.
public enum WaitReason: String, Codable, Sendable, CaseIterable {
    /// No policy has been accepted (none fetched yet, or every one was refused).
    case noPolicy = "no-policy"
    /// The accepted policy has expired: nothing new starts until a fresh one arrives.
    case policyExpired = "policy-expired"
    /// The policy has no release for this host's stream.
    case noRelease = "no-release"
    /// The host already runs the release.
    case upToDate = "up-to-date"
    /// The release failed its health checks here and is denylisted until its retry epoch rises.
    case denylisted
    /// The host's bucket is beyond the last wave.
    case notInAnyWave = "not-in-any-wave"
    /// The host's wave is beyond `open-through-wave`.
    case waveNotOpen = "wave-not-open"
    /// The wave is open but the host's start time (start-after plus its share of the ramp) is ahead.
    case notEligibleYet = "not-eligible-yet"
    /// Eligible, but no maintenance window is open.
    case outsideWindow = "outside-window"
    /// Eligible and in a window, but the FleetLock server has no free reboot slot.
    case lockBusy = "lock-busy"
}

/// For one host and one policy: where the host stands in the rollout and why it waits.
public struct PolicyExplanation: Codable, Sendable, Equatable {
    public var fleet: String
    public var policyVersion: Int64
    public var stream: String
    public var hostId: String
    public var bucket: Int
    /// The wave's name; nil when no wave covers the bucket or there is no release.
    public var wave: String?
    public var waveIndex: Int?
    /// When the host's wave position lets it start (the wave must also be open).
    public var eligibleAt: Date?
    /// Whether the release may be finalized now, windows aside.
    public var eligible: Bool
    public var release: String?
    public var commit: String?
    /// Whether a maintenance window is open now (always, without windows).
    public var windowOpen: Bool
    /// When the next window opens (now when one is open; nil without windows).
    public var nextWindow: Date?
    /// The one reason the host waits now; nil when nothing stands in the way.
    public var waitingFor: WaitReason?
    /// The same, as a sentence.
    public var reason: String
}

extension FleetPolicy {
    /// Explains the rollout for a host with `hostID` in `stream` at `now`. `current` is the host's
    /// base commit (for up-to-date) and `denylisted` whether the release is denylisted there.
    public func explain(stream: String, hostID: String, at now: Date, current: String? = nil, denylisted: Bool = false) -> PolicyExplanation {
        let bucket = HostIdentity.bucket(fleet: fleet, salt: salt(stream: stream), hostID: hostID)
        let release = streams[stream]?.release
        let position = release.flatMap { Wave.position(of: bucket, in: $0.waves, published: $0.published) }
        let windows = self.windows ?? []
        var result = PolicyExplanation(
            fleet: fleet, policyVersion: version, stream: stream, hostId: hostID, bucket: bucket, wave: position?.name,
            waveIndex: position?.index, eligibleAt: position?.start, eligible: false, release: release?.id, commit: release?.commit,
            windowOpen: windows.isOpen(at: now), nextWindow: windows.nextOpening(after: now), waitingFor: nil, reason: "")
        let verdict: (WaitReason?, String)
        if expires <= now {
            verdict = (.policyExpired, "the policy expired at \(Self.format(expires)); waiting for a newer one")
        } else if streams[stream] == nil {
            verdict = (.noRelease, "the policy has no stream \(stream)")
        } else if let release {
            if release.commit == current {
                verdict = (.upToDate, "this host runs release \(release.id)")
            } else if denylisted {
                verdict = (.denylisted, "release \(release.id) failed its health checks here; it is retried only with a higher retry-epoch")
            } else if let position {
                if position.index > release.openThroughWave {
                    verdict = (.waveNotOpen, "wave \(position.name) is not open yet (open through wave \(release.openThroughWave))")
                } else if position.start > now {
                    verdict = (.notEligibleYet, "wave \(position.name) starts for this host at \(Self.format(position.start))")
                } else if !result.windowOpen {
                    result.eligible = true
                    verdict = (.outsideWindow, "eligible; the next maintenance window opens at \(result.nextWindow.map(Self.format) ?? "never")")
                } else {
                    result.eligible = true
                    verdict = (nil, "eligible and inside a maintenance window")
                }
            } else {
                verdict = (.notInAnyWave, "bucket \(bucket) is beyond the release's last wave")
            }
        } else {
            verdict = (.noRelease, "stream \(stream) has no release")
        }
        (result.waitingFor, result.reason) = verdict
        return result
    }

    /// RFC 3339 in UTC, whole seconds.
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }
}
