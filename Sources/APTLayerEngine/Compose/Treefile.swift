import APTLayerModel
import Foundation
import OSTree
import Yams

/// A YAML description of a base image, composed with mmdebstrap.
///
/// ```yaml
/// ref: debian/bookworm/x86_64/minbase
/// version: "12.0.1"          # optional; default: a UTC timestamp
/// suite: bookworm            # default: bookworm
/// components: [main]         # default: [main]
/// architecture: amd64        # default: the host's
/// variant: minbase           # mmdebstrap variant; default: minbase
/// mirror: http://...         # optional; default: the host's apt sources
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
    public var packages: [String]
    /// Absolute paths of .deb files installed with the packages.
    public var localPackages: [String]
    /// mmdebstrap customize hooks, run in order after the packages are installed.
    public var customizeHooks: [String]
    public var stubKernel: Bool

    enum CodingKeys: String, CodingKey {
        case ref, version, suite, components, architecture, variant, mirror, packages
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
        packages = try c.decodeIfPresent([String].self, forKey: .packages) ?? []
        localPackages = try c.decodeIfPresent([String].self, forKey: .localPackages) ?? []
        customizeHooks = try c.decodeIfPresent([String].self, forKey: .customizeHooks) ?? []
        for path in localPackages where !path.hasPrefix("/") || !path.hasSuffix(".deb") {
            throw DecodingError.dataCorruptedError(
                forKey: .localPackages, in: c, debugDescription: "local-packages must be absolute paths of .deb files, got \(path)")
        }
        stubKernel = try c.decodeIfPresent(Bool.self, forKey: .stubKernel) ?? false
    }

    /// Parses a treefile's YAML text.
    public static func parse(_ yaml: String) throws -> Treefile {
        do {
            return try YAMLDecoder().decode(Treefile.self, from: yaml)
        } catch {
            throw EngineError(.invalidArgument, "invalid treefile: \(error)")
        }
    }

    /// The mmdebstrap command line that builds this tree into `target`.
    public func mmdebstrapArguments(target: String) -> [String] {
        var args = ["mmdebstrap", "--mode=root", "--variant=\(variant)", "--components=\(components.joined(separator: ","))"]
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
        let rootfs = "\(workDirectory)/rootfs-\(getpid())"
        defer { FileTree.remove(rootfs) }
        progress.phase("Running mmdebstrap \(suite) (\(variant))")
        let result = try Subprocess.run(mmdebstrapArguments(target: rootfs), token: token) { progress.message($0) }
        guard result.succeeded else {
            // mmdebstrap's first error names the cause; its last one only says that it failed.
            let lines = result.output.split(separator: "\n")
            let reason =
                lines.first { $0.hasPrefix("E:") && !$0.contains("mmdebstrap failed") } ?? lines.last { $0.hasPrefix("E:") } ?? lines.last ?? ""
            throw EngineError(.system, "mmdebstrap failed: \(reason)")
        }
        return try RootfsComposer(progress: progress).compose(
            rootfs: rootfs, into: repo, options: .init(ref: ref, version: version, stubKernel: stubKernel))
    }
}
