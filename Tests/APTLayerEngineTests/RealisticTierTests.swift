import APTLayerEngine
import APTLayerModel
import Foundation
import TestSupport
import Testing

/// The realistic tier, on each distribution apt-layer manages: a real minbase of Debian 12,
/// Debian 13 and Ubuntu 24.04 composed with mmdebstrap from the committed treefile (the
/// distribution's own archive and keyring), a real package with dependencies from it, the
/// distribution's real adduser, a bwrap "smoke boot" of the new deployment, apt-layer's own .deb
/// resolved against the distribution, and a rebase from Debian 12 to Debian 13.
@Suite("Realistic tier: Debian 12, Debian 13, Ubuntu 24.04", .asRoot, .offPool)
struct RealisticTierTests {
    /// A committed minbase treefile and what its distribution calls things.
    struct Base: CustomTestStringConvertible, Sendable {
        var suite: String
        var ref: String
        /// `NAME VERSION_ID` of its os-release (countme's User-Agent shows it).
        var nameVersion: String
        var testDescription: String { suite }
        var treefile: String { "\(Paths.packageRoot)/deploy/treefiles/\(suite)-minbase.yaml" }
    }

    static let bases = [
        Base(suite: "bookworm", ref: "debian/bookworm/x86_64/minbase", nameVersion: "Debian GNU/Linux 12"),
        Base(suite: "trixie", ref: "debian/trixie/x86_64/minbase", nameVersion: "Debian GNU/Linux 13"),
        Base(suite: "noble", ref: "ubuntu/noble/x86_64/minbase", nameVersion: "Ubuntu 24.04"),
    ]

    /// Composes `base` into the bed's repository. The archive is the network: one retry absorbs a
    /// transient fetch failure; a second failure fails the test.
    static func compose(_ base: Base, in bed: TestBed) throws -> String {
        do {
            return try bed.engine().composeTree(base.treefile, repo: nil)
        } catch {
            print("compose tree \(base.suite) failed once, retrying: \(error)")
            return try bed.engine().composeTree(base.treefile, repo: nil)
        }
    }

    /// A local package whose postinst runs the distribution's real `adduser --system`.
    static func serviceDeb(in bed: TestBed) throws -> String {
        let src = "\(bed.fixtures)/svc"
        try Shell.run(
            """
            mkdir -p \(src)/DEBIAN \(src)/usr/share/doc/fixture-svc && echo doc > \(src)/usr/share/doc/fixture-svc/README &&
            printf 'Package: fixture-svc\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@localhost>\\nDepends: adduser\\nDescription: svc\\n' > \(src)/DEBIAN/control &&
            printf '#!/bin/sh\\nset -e\\nadduser --system --group --no-create-home --home /nonexistent svcuser\\n' > \(src)/DEBIAN/postinst &&
            chmod 755 \(src)/DEBIAN/postinst && dpkg-deb --root-owner-group --build \(src) \(bed.fixtures)/fixture-svc.deb >/dev/null
            """)
        return "\(bed.fixtures)/fixture-svc.deb"
    }

    /// apt-layer's own package: `APT_LAYER_TEST_DEB` (scripts/test.sh builds it once for this tier
    /// and the VM tier), else built here with scripts/build-deb.sh.
    static let packagedDeb: Result<String, any Error> = Result {
        if let path = ProcessInfo.processInfo.environment["APT_LAYER_TEST_DEB"], FileManager.default.fileExists(atPath: path) { return path }
        let dir = "/tmp/apt-layer-test-deb.\(getpid())"
        atexit { _ = try? Shell.run("rm -rf /tmp/apt-layer-test-deb.\(getpid())") }
        return try Shell.run("APT_LAYER_DEB_CONFIG=debug sh \(Paths.packageRoot)/scripts/build-deb.sh \(dir)")
            .split(separator: "\n").last.map(String.init) ?? ""
    }

    @Test(arguments: bases) func composeLayerCurlAndSmokeBoot(_ base: Base) throws {
        let bed = try TestBed(sysrootSize: "2G", deploy: false)
        let checksum = try Self.compose(base, in: bed)
        _ = try bed.engine().rebase(base.ref)
        #expect(try bed.defaultChecksum == checksum)
        #expect(try bed.packageNames().contains("dpkg"))
        #expect(try !bed.packageNames().contains("curl"))
        let release = OSRelease.load(root: try bed.deploymentDirectory())
        #expect(release.map { "\($0.fields["NAME"] ?? "") \($0.fields["VERSION_ID"] ?? "")" } == base.nameVersion)

        // The admin edits /etc/passwd locally before layering, and adds an apt hook that must not
        // run on the host during the build (as Ubuntu's needrestart or snapd hooks would).
        let etc = try bed.deploymentDirectory() + "/etc"
        let marker = "\(bed.fixtures)/hook-ran-on-host"
        try Shell.run("echo 'admin:x:1000:1000:Admin:/home/admin:/bin/sh' >> \(etc)/passwd")
        try Shell.run("echo 'DPkg::Post-Invoke { \"touch \(marker)\"; };' > \(etc)/apt/apt.conf.d/99admin-hook")

        let result = try bed.engine().install(["curl", try Self.serviceDeb(in: bed)])
        #expect(result.diff?.added.contains { $0.name.hasPrefix("libcurl4") } == true)
        #expect(!FileManager.default.fileExists(atPath: marker), "the tree's DPkg::Post-Invoke hook ran on the host")
        let dir = try bed.deploymentDirectory()
        let passwd = try String(contentsOfFile: "\(dir)/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("admin:x:1000") && passwd.contains("svcuser:"))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/etc/apt/apt.conf.d/99admin-hook"), "the admin's apt configuration is kept")
        #expect(try bed.engine().packageDiff(from: "1", to: "0").diff.added.contains { $0.name == "curl" })
        #expect(bed.leftovers.isEmpty)

        // Smoke boot: the deployment as /, /usr read-only, the stateroot's /var, tmpfiles applied.
        let stateVar = "\(bed.sysroot)/ostree/deploy/debian/var"
        try Shell.run("mount --bind \(stateVar) \(dir)/var && systemd-tmpfiles --create --boot --root=\(dir) >/dev/null 2>&1; umount \(dir)/var")
        let output = try Shell.run(
            """
            bwrap --bind \(dir) / --ro-bind \(dir)/usr /usr --bind \(stateVar) /var --proc /proc --dev /dev --tmpfs /tmp --tmpfs /run \
              --unshare-pid --unshare-net --die-with-parent -- /bin/sh -c \
              'curl --version | head -1; dpkg-query -W -f "\\${Package} \\${Status}\\n" curl; id svcuser >/dev/null && echo user-ok; touch /usr/x 2>/dev/null && echo usr-writable || echo usr-readonly'
            """)
        #expect(output.contains("curl 7.") || output.contains("curl 8."))
        #expect(output.contains("curl install ok installed"))
        #expect(output.contains("user-ok"))
        #expect(output.contains("usr-readonly"))

        // One agent package for all three: apt-layer's .deb (built on Debian 12) resolves against
        // this distribution's archive — a dry run through the engine, apt-get's simulation.
        let deployments = try bed.status.deployments.count
        let planned = try bed.engine().install([try Self.packagedDeb.get()], flags: .init(dryRun: true))
        let added = Set(planned.diff?.added.map(\.name) ?? [])
        #expect(added.contains("apt-layer") && added.contains { $0.hasPrefix("libostree-1-1") }, "\(planned.summary)")
        #expect(try bed.status.deployments.count == deployments)
    }

    /// A keyring that does not sign the archive: one line with apt's reason, no commit, no tree left.
    @Test func composeRefusesAnArchiveItsKeyringDoesNotVerify() throws {
        let bed = try TestBed(deploy: false)
        let treefile = "\(bed.fixtures)/noble-wrong-keyring.yaml"
        try
            "ref: ubuntu/noble/x86_64/unverified\ndistribution: ubuntu\nsuite: noble\nkeyring: /usr/share/keyrings/debian-archive-keyring.gpg\nstub-kernel: true\n"
            .write(toFile: treefile, atomically: true, encoding: .utf8)
        #expect {
            try bed.engine().composeTree(treefile, repo: nil)
        } throws: { error in
            let text = "\(error)"
            return text.contains("the ubuntu archive's signature does not verify with keyring /usr/share/keyrings/debian-archive-keyring.gpg")
                && text.contains("NO_PUBKEY") && !text.contains("\n")
        }
        #expect(try !Shell.run("ostree --repo=\(bed.sysroot)/ostree/repo refs").contains("unverified"))
        let temporary = (try? FileManager.default.contentsOfDirectory(atPath: "\(bed.sysroot)/ostree/repo/tmp")) ?? []
        #expect(!temporary.contains { $0.hasPrefix("rootfs-") }, "\(temporary)")
    }

    /// `rebase` from Debian 12 to Debian 13 as a release upgrade: the layered packages are resolved
    /// again against trixie (the new deployment's sources, not the old ones); a layered package
    /// trixie no longer has is one clear error naming it, and nothing changes.
    @Test func rebaseFromDebian12To13KeepsTheLayeredPackages() throws {
        let bed = try TestBed(sysrootSize: "2G", deploy: false)
        _ = try Self.compose(Self.bases[0], in: bed)
        let trixie = try Self.compose(Self.bases[1], in: bed)
        _ = try bed.engine().rebase(Self.bases[0].ref)
        let etc = try bed.deploymentDirectory() + "/etc"
        try Shell.run("echo 'admin:x:1000:1000:Admin:/home/admin:/bin/sh' >> \(etc)/passwd")
        try Shell.run("echo 'Acquire::Retries \"3\";' > \(etc)/apt/apt.conf.d/99admin")
        // neofetch is in bookworm and gone from trixie.
        _ = try bed.engine().install(["curl", "neofetch", try Self.serviceDeb(in: bed)])
        #expect(try bed.engine().packages().first { $0.name == "curl" }?.version.hasPrefix("7.") == true)

        let before = try bed.status.deployments.map(\.id)
        #expect {
            try bed.engine().rebase(Self.bases[1].ref)
        } throws: { error in
            "\(error)".contains("neofetch") && !"\(error)".contains("\n")
        }
        #expect(try bed.status.deployments.map(\.id) == before, "a refused rebase changes nothing")
        #expect(bed.leftovers.isEmpty)

        _ = try bed.engine().uninstall(["neofetch"])
        let result = try bed.engine().rebase(Self.bases[1].ref)
        #expect(result.changed)
        let packages = try bed.engine().packages()
        #expect(try bed.status.deployments.first?.baseChecksum == trixie, "the layered commit sits on the trixie base")
        #expect(packages.first { $0.name == "curl" }?.version.hasPrefix("8.") == true, "curl re-resolved against trixie")
        #expect(packages.contains { $0.name == "libcurl4t64" } && packages.contains { $0.name == "fixture-svc" })
        #expect(try bed.engine().status().deployments.first?.requestedPackages.contains("curl") == true)
        let dir = try bed.deploymentDirectory()
        #expect(OSRelease.load(root: dir)?.fields["VERSION_ID"] == "13")
        #expect(try String(contentsOfFile: "\(dir)/etc/passwd", encoding: .utf8).contains("admin:x:1000"))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/etc/apt/apt.conf.d/99admin"))
        #expect(bed.leftovers.isEmpty)
    }
}
