import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// Debian 12, Debian 13 and Ubuntu 24.04 as the engine tells them apart without a network: which
/// archive and keyring a treefile composes from, where each distribution's signed EFI programs
/// are, and the apt hooks of a tree that must not run on the host.
@Suite("Distributions", .tags(.fast))
struct DistributionTests {
    /// The repository's deploy/ directory.
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../deploy").standardizedFileURL.path

    /// A scratch directory with distro-info-data CSVs of the given suites.
    static func distroInfo(debian: [String], ubuntu: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distro-info-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let header = "version,codename,series,created,release,eol\n"
        try (header + debian.map { "1,X,\($0),2020-01-01,2021-01-01,2030-01-01\n" }.joined()).write(
            toFile: "\(dir)/debian.csv", atomically: true, encoding: .utf8)
        try (header + ubuntu.map { "24.04 LTS,X,\($0),2020-01-01,2021-01-01,2030-01-01\n" }.joined()).write(
            toFile: "\(dir)/ubuntu.csv", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func committedTreefilesNameTheirArchiveAndKeyring() throws {
        let info = try Self.distroInfo(debian: ["bookworm", "trixie"], ubuntu: ["noble"])
        for (name, distribution) in [
            ("bookworm-minbase", Distribution.debian), ("bookworm-vm", .debian), ("trixie-minbase", .debian), ("trixie-vm", .debian),
            ("noble-minbase", .ubuntu), ("noble-vm", .ubuntu),
        ] {
            let path = "\(Self.deploy)/treefiles/\(name).yaml"
            let tree = try Treefile.parse(try String(contentsOfFile: path, encoding: .utf8), directory: "\(Self.deploy)/treefiles")
            #expect(tree.distribution == distribution, "\(name)")
            #expect(tree.keyring != nil, "\(name) names its keyring")
            #expect(tree.mirror == nil, "\(name): the distribution's own archive")
            if distribution == .ubuntu {
                // The Ubuntu keyring is the repository's, pinned: its digest is checked here as compose checks it.
                let archive = try tree.archive(distroInfo: info)
                #expect(archive.keyring == "\(Self.deploy)/keyrings/ubuntu-archive-keyring.gpg")
                #expect(tree.mmdebstrapArguments(target: "/t", archive: archive).contains("--keyring=\(archive.keyring)"))
                #expect(tree.packages.contains("apt"), "Ubuntu's minbase has no apt")
            }
        }
    }

    @Test func archiveRefusals() throws {
        let info = try Self.distroInfo(debian: ["bookworm", "trixie"], ubuntu: ["noble"])
        let keyring = "\(Self.deploy)/keyrings/ubuntu-archive-keyring.gpg"
        func refusal(_ yaml: String) -> String {
            do {
                _ = try Treefile.parse("ref: x/y\n" + yaml, directory: "/").archive(distroInfo: info)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(
            refusal("suite: noble\ndistribution: debian\nkeyring: \(keyring)\n").contains("names distribution debian but noble is a ubuntu suite"))
        #expect(refusal("suite: plucky\nkeyring: \(keyring)\n").contains("suite plucky is not a Debian or Ubuntu release this build host knows"))
        #expect(refusal("suite: plucky\ndistribution: ubuntu\nkeyring: \(keyring)\n").contains("name its mirror"))
        #expect(refusal("suite: noble\nkeyring: \(keyring)\nkeyring-sha256: \(String(repeating: "0", count: 64))\n").contains("refusing to trust it"))
        #expect(refusal("suite: noble\nkeyring: /nonexistent.gpg\n").contains("treefile keyring /nonexistent.gpg does not exist"))
        // A mirror is one URL: no `[trusted=yes]` deb line gets past it.
        #expect(
            refusal("suite: trixie\nkeyring: \(keyring)\nmirror: \"deb [trusted=yes] http://m/ trixie main\"\n").contains("must be one http(s)://"))
        #expect(refusal("suite: trixie\nkeyring: \(keyring)\nmirror: http://m/debian\n") == "accepted")
        #expect(refusal("suite: bookworm-backports\nkeyring: \(keyring)\n") == "accepted")
        #expect(throws: EngineError.self) { try Treefile.parse("ref: x\nkeyring-sha256: abc\n") }
        #expect(throws: EngineError.self) { try Treefile.parse("ref: x\ndistribution: fedora\n") }
    }

    @Test func efiChainPerDistribution() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("efi-\(UUID().uuidString)").path
        func layout(id: String, files: [String]) throws {
            try? FileManager.default.removeItem(atPath: root)
            for path in files + ["usr/lib/os-release"] {
                try FileManager.default.createDirectory(
                    atPath: "\(root)/\((path as NSString).deletingLastPathComponent)", withIntermediateDirectories: true)
                try (path.hasSuffix("os-release") ? "ID=\(id)\n" : "x").write(toFile: "\(root)/\(path)", atomically: true, encoding: .utf8)
            }
        }
        try layout(
            id: "debian",
            files: ["usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "usr/lib/shim/mmx64.efi.signed"])
        let debian = try EFIChain.find(in: root)
        #expect(debian.vendor == "debian" && debian.placements[0].targets == ["EFI/BOOT/BOOTX64.EFI", "EFI/debian/shimx64.efi"])
        try layout(
            id: "ubuntu",
            files: ["usr/lib/shim/shimx64.efi.signed.latest", "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "usr/lib/shim/mmx64.efi"])
        // Ubuntu's shimx64.efi.signed is an alternative: absolute links, followed inside the tree.
        try FileManager.default.createDirectory(atPath: "\(root)/etc/alternatives", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: "\(root)/etc/alternatives/shimx64.efi.signed", withDestinationPath: "/usr/lib/shim/shimx64.efi.signed.latest")
        try FileManager.default.createSymbolicLink(
            atPath: "\(root)/usr/lib/shim/shimx64.efi.signed", withDestinationPath: "/etc/alternatives/shimx64.efi.signed")
        let ubuntu = try EFIChain.find(in: root)
        #expect(ubuntu.vendor == "ubuntu" && ubuntu.shim == "usr/lib/shim/shimx64.efi.signed.latest" && ubuntu.mokManager == "usr/lib/shim/mmx64.efi")
        #expect(ubuntu.placements[1].targets == ["EFI/BOOT/grubx64.efi", "EFI/ubuntu/grubx64.efi"])
        try layout(id: "fedora", files: [])
        #expect {
            try EFIChain.find(in: root)
        } throws: {
            "\($0)".contains("os-release ID is \"fedora\"")
        }
    }

    @Test func treeHooksAreClearedAfterTheTreesOwnConfiguration() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("etc-apt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "APT::Get::Assume-Yes \"true\";".write(toFile: "\(dir)/apt.conf", atomically: true, encoding: .utf8)
        try AptSession.silenceTreeHooks(etcApt: dir, planCheck: "/w/plan-check")
        let text = try String(contentsOfFile: "\(dir)/apt.conf", encoding: .utf8)
        #expect(text.hasPrefix("APT::Get::Assume-Yes \"true\";\n"))
        for hook in ["DPkg::Post-Invoke", "DPkg::Pre-Install-Pkgs", "APT::Update::Pre-Invoke"] { #expect(text.contains("#clear \(hook);")) }
        #expect(text.hasSuffix("DPkg::Pre-Install-Pkgs { \"/w/plan-check\"; };\n"))
    }
}
