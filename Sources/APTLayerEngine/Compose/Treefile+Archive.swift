import APTLayerModel
import Foundation
import OSTree

/// A distribution whose archive a treefile composes from.
public enum Distribution: String, Codable, Sendable, CaseIterable {
    case debian
    case ubuntu

    /// The keyring Debian's packages install for this distribution's archive on a build host.
    var hostKeyring: String {
        switch self {
        case .debian: "/usr/share/keyrings/debian-archive-keyring.gpg"
        case .ubuntu: "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
        }
    }
}

/// The archive a treefile composes from, resolved and checked before mmdebstrap runs.
public struct TreefileArchive: Sendable, Equatable {
    /// Debian or Ubuntu.
    public var distribution: Distribution
    /// The keyring that signs the archive (absolute path, checksum checked when pinned).
    public var keyring: String
    /// The mirror URL, or nil for the distribution's own archive as the build host's mmdebstrap
    /// knows it (from distro-info-data: the release suite, its `-updates` and its `-security`).
    public var mirror: String?
}

extension Treefile {
    /// The suites distro-info-data (on the build host) lists for each distribution.
    static func knownSuites(distroInfo: String) -> [Distribution: Set<String>] {
        var suites: [Distribution: Set<String>] = [:]
        for distribution in Distribution.allCases {
            let csv = FileTree.read("\(distroInfo)/\(distribution.rawValue).csv") ?? ""
            // version,codename,series,created,release,eol,...: the series is the suite name.
            suites[distribution] = Set(
                csv.split(separator: "\n").dropFirst().compactMap { $0.split(separator: ",").dropFirst(2).first.map(String.init) })
        }
        suites[.debian, default: []].formUnion(["stable", "oldstable", "testing", "unstable", "sid"])
        return suites
    }

    /// Which distribution `suite` belongs to, by the build host's distro-info-data.
    static func distribution(ofSuite suite: String, distroInfo: String) -> Distribution? {
        let base = suite.split(separator: "-").first.map(String.init) ?? suite
        return knownSuites(distroInfo: distroInfo).first { $0.value.contains(base) }?.key
    }

    /// Resolves and checks the archive: the distribution (named, or known from the suite), the
    /// keyring (relative to the treefile's directory; its sha256 when pinned), and the mirror.
    /// Every refusal is one line naming what to change.
    public func archive(distroInfo: String = "/usr/share/distro-info") throws -> TreefileArchive {
        if let mirror {
            let schemes = ["http://", "https://", "file:/"]
            guard schemes.contains(where: mirror.hasPrefix), !mirror.contains(where: \.isWhitespace) else {
                throw EngineError(.invalidArgument, "treefile mirror must be one http(s):// or file:/ URL, got \"\(mirror)\"")
            }
        }
        let known = Self.distribution(ofSuite: suite, distroInfo: distroInfo)
        if let distribution, let known, distribution != known {
            throw EngineError(.invalidArgument, "treefile names distribution \(distribution.rawValue) but \(suite) is a \(known.rawValue) suite")
        }
        guard let resolved = distribution ?? known else {
            throw EngineError(
                .invalidArgument,
                "suite \(suite) is not a Debian or Ubuntu release this build host knows (distro-info-data): name its distribution and mirror")
        }
        if known == nil, mirror == nil {
            throw EngineError(
                .invalidArgument, "suite \(suite) is not a \(resolved.rawValue) release this build host knows (distro-info-data): name its mirror")
        }
        let keyring = keyringPath ?? resolved.hostKeyring
        guard FileTree.exists(keyring) else {
            throw EngineError(
                .notFound,
                keyringPath == nil
                    ? "no \(resolved.rawValue) archive keyring at \(keyring): name one with keyring: (and pin it with keyring-sha256:)"
                    : "treefile keyring \(keyring) does not exist")
        }
        if let pinned = keyringSHA256 {
            let actual = try SHA256.hex(fileAt: keyring)
            guard actual == pinned.lowercased() else {
                throw EngineError(.refused, "keyring \(keyring) has sha256 \(actual), but the treefile pins \(pinned): refusing to trust it")
            }
        }
        return TreefileArchive(distribution: resolved, keyring: keyring, mirror: mirror)
    }

    /// The `keyring` key made absolute against the treefile's directory.
    var keyringPath: String? {
        guard let keyring else { return nil }
        if keyring.hasPrefix("/") { return keyring }
        return URL(
            fileURLWithPath: keyring, relativeTo: URL(fileURLWithPath: directory ?? FileManager.default.currentDirectoryPath, isDirectory: true)
        )
        .standardizedFileURL.path
    }
}
