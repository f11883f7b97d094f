import APTLayerModel
import Foundation
import OSTree
import Yams

/// A YAML description of a base image, composed with mmdebstrap.
///
/// ```yaml
/// ref: debian/bookworm/x86_64/minbase
/// version: "12.0.1"          # optional; default: a UTC timestamp
/// distribution: debian       # debian or ubuntu; default: the suite's, by distro-info-data
/// suite: bookworm            # default: bookworm
/// components: [main]         # default: [main]
/// keyring: ../keyrings/x.gpg # the archive's signing keys, relative to this file; default:
///                            # the build host's debian-/ubuntu-archive-keyring.gpg
/// keyring-sha256: 80a3...    # optional pin: compose refuses a keyring with another digest
/// architecture: amd64        # default: the host's
/// variant: minbase           # mmdebstrap variant; default: minbase
/// mirror: http://...         # optional; default: the distribution's archive as the build
///                            # host's mmdebstrap knows it (suite, -updates, -security)
/// packages: [ca-certificates]
/// local-packages: [/srv/apt-layer_0.3.0_amd64.deb]   # .deb files installed with the packages
/// customize-hooks:           # mmdebstrap --customize-hook commands ("$1" is the tree)
///   - chroot "$1" dracut --force --no-hostonly --kver 6.1.0-28-amd64 /boot/initrd.img-6.1.0-28-amd64
/// stub-kernel: true          # test/demo trees without a kernel package
/// ```
public struct Treefile: Codable, Sendable, Equatable {
    public var ref: String
    public var version: String?
    public var suite: String
    public var components: [String]
    public var architecture: String?
    public var variant: String
    public var mirror: String?
    /// Debian or Ubuntu; nil to take it from the suite (``archive(distroInfo:)``).
    public var distribution: Distribution?
    /// The archive keyring as written (relative paths are against ``directory``).
    public var keyring: String?
    /// The keyring's pinned SHA-256, checked before anything is fetched.
    public var keyringSHA256: String?
    /// The directory the treefile was read from (relative `keyring` paths); not part of the YAML.
    public var directory: String?
    public var packages: [String]
    /// Absolute paths of .deb files installed with the packages.
    public var localPackages: [String]
    /// mmdebstrap customize hooks, run in order after the packages are installed.
    public var customizeHooks: [String]
    public var stubKernel: Bool

    enum CodingKeys: String, CodingKey {
        case ref, version, suite, components, architecture, variant, mirror, packages, distribution, keyring
        case keyringSHA256 = "keyring-sha256"
        case localPackages = "local-packages"
        case customizeHooks = "customize-hooks"
        case stubKernel = "stub-kernel"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ref = try c.decode(String.self, forKey: .ref)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        suite = try c.decodeIfPresent(String.self, forKey: .suite) ?? "bookworm"
        components = try c.decodeIfPresent([String].self, forKey: .components) ?? ["main"]
        architecture = try c.decodeIfPresent(String.self, forKey: .architecture)
        variant = try c.decodeIfPresent(String.self, forKey: .variant) ?? "minbase"
        mirror = try c.decodeIfPresent(String.self, forKey: .mirror)
        distribution = try c.decodeIfPresent(Distribution.self, forKey: .distribution)
        keyring = try c.decodeIfPresent(String.self, forKey: .keyring)
        keyringSHA256 = try c.decodeIfPresent(String.self, forKey: .keyringSHA256)
        if let pin = keyringSHA256, pin.count != 64 || !pin.allSatisfy(\.isHexDigit) {
            throw DecodingError.dataCorruptedError(forKey: .keyringSHA256, in: c, debugDescription: "keyring-sha256 must be 64 hex digits")
        }
        packages = try c.decodeIfPresent([String].self, forKey: .packages) ?? []
        localPackages = try c.decodeIfPresent([String].self, forKey: .localPackages) ?? []
        customizeHooks = try c.decodeIfPresent([String].self, forKey: .customizeHooks) ?? []
        for path in localPackages where !path.hasPrefix("/") || !path.hasSuffix(".deb") {
            throw DecodingError.dataCorruptedError(
                forKey: .localPackages, in: c, debugDescription: "local-packages must be absolute paths of .deb files, got \(path)")
        }
        stubKernel = try c.decodeIfPresent(Bool.self, forKey: .stubKernel) ?? false
    }

    /// Parses a treefile's YAML text; `directory` is where relative paths in it start.
    public static func parse(_ yaml: String, directory: String? = nil) throws -> Treefile {
        do {
            var tree = try YAMLDecoder().decode(Treefile.self, from: yaml)
            tree.directory = directory
            return tree
        } catch {
            throw EngineError(.invalidArgument, "invalid treefile: \(error)")
        }
    }

    /// The mmdebstrap command line that builds this tree into `target` from `archive`.
    public func mmdebstrapArguments(target: String, archive: TreefileArchive? = nil) -> [String] {
        var args = ["mmdebstrap", "--mode=root", "--variant=\(variant)", "--components=\(components.joined(separator: ","))"]
        if let archive { args.append("--keyring=\(archive.keyring)") }
        if let architecture { args.append("--architectures=\(architecture)") }
        if !packages.isEmpty { args.append("--include=\(packages.joined(separator: ","))") }
        // Each .deb path in its own --include; mmdebstrap's hook makes it visible inside the chroot.
        for path in localPackages { args.append("--include=\(path)") }
        if !localPackages.isEmpty { args.append("--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount") }
        for hook in customizeHooks { args.append("--customize-hook=\(hook)") }
        args += [suite, target]
        if let mirror { args.append(mirror) }
        return args
    }

    /// Runs mmdebstrap into `workDirectory/rootfs`, converts and commits the tree. Returns the checksum.
    public func compose(into repo: Repo, workDirectory: String, progress: any ProgressSink = SilentProgress(), token: CancellationToken? = nil) throws
        -> String
    {
        let archive = try archive()
        let rootfs = "\(workDirectory)/rootfs-\(getpid())"
        defer { FileTree.remove(rootfs) }
        progress.phase("Running mmdebstrap \(archive.distribution.rawValue) \(suite) (\(variant))")
        let result = try Subprocess.run(mmdebstrapArguments(target: rootfs, archive: archive), token: token) { progress.message($0) }
        guard result.succeeded else {
            // mmdebstrap's first error names the cause; its last one only says that it failed.
            let lines = result.output.split(separator: "\n")
            if let gpg = lines.first(where: { $0.hasPrefix("W: GPG error:") || $0.hasPrefix("W: OpenPGP signature verification failed") }) {
                throw EngineError(
                    .refused,
                    "the \(archive.distribution.rawValue) archive's signature does not verify with keyring \(archive.keyring): \(gpg.dropFirst(3))")
            }
            let reason =
                lines.first { $0.hasPrefix("E:") && !$0.contains("mmdebstrap failed") } ?? lines.last { $0.hasPrefix("E:") } ?? lines.last ?? ""
            throw EngineError(.system, "mmdebstrap failed: \(reason)")
        }
        return try RootfsComposer(progress: progress).compose(
            rootfs: rootfs, into: repo, options: .init(ref: ref, version: version, stubKernel: stubKernel))
    }
}
