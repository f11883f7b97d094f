import Foundation

/// One wave of a release: hosts whose bucket is below `until` (and at or above the previous
/// wave's `until`) may start `startAfter` after publication, spread over `ramp` by bucket.
public struct Wave: Codable, Sendable, Equatable {
    public var name: String
    /// Exclusive upper bound of the wave's buckets, 1...10000.
    public var until: Int
    public var startAfter: PolicyDuration
    public var ramp: PolicyDuration?

    enum CodingKeys: String, CodingKey {
        case name, until, ramp
        case startAfter = "start-after"
    }
}

/// Where a host falls in a release's rollout.
public struct WavePosition: Sendable, Equatable {
    /// Index of the host's wave (0 = the first).
    public var index: Int
    public var name: String
    /// When the host may start.
    public var start: Date
}

extension Wave {
    /// The host's wave and start time: the first wave with `bucket < until`; start =
    /// published + start-after + ⌊ramp × (bucket − previous until) / (until − previous until)⌋, in
    /// whole seconds (integer arithmetic, so anyone recomputes the same instant). Nil when no wave
    /// covers the bucket.
    public static func position(of bucket: Int, in waves: [Wave], published: Date) -> WavePosition? {
        var previous = 0
        for (index, wave) in waves.enumerated() {
            if bucket < wave.until {
                let width = max(wave.until - previous, 1)
                let offset = (wave.ramp?.seconds ?? 0) * (bucket - previous) / width
                let start = published.addingTimeInterval(Double(wave.startAfter.seconds + offset))
                return WavePosition(index: index, name: wave.name, start: start)
            }
            previous = wave.until
        }
        return nil
    }

    /// Checks the waves of a policy: names present, `until` strictly increasing within 1...10000.
    public static func validate(_ waves: [Wave]) throws {
        var previous = 0
        for wave in waves {
            guard !wave.name.isEmpty, wave.until > previous, wave.until <= 10000 else {
                throw PolicyError.invalid("waves must have names and strictly increasing until values within 1...10000")
            }
            previous = wave.until
        }
    }
}
