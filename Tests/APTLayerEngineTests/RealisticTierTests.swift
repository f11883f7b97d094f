import APTLayerEngine
import APTLayerModel
import Foundation
import TestSupport
import Testing

/// The realistic tier: a real bookworm minbase composed with mmdebstrap from the host's configured
/// mirror, a real package with dependencies from that mirror, Debian's real adduser, and a
/// bwrap "smoke boot" of the new deployment.
@Suite("Realistic tier: bookworm minbase", .serialized, .asRoot, .offPool)
struct RealisticTierTests {
    @Test func composeLayerCurlAndSmokeBoot() throws {
        let bed = try TestBed(deploy: false)
        let treefile = "\(bed.fixtures)/minbase.yaml"
        try "ref: debian/bookworm/minbase\nversion: \"12-test\"\nsuite: bookworm\nstub-kernel: true\n".write(
            toFile: treefile, atomically: true, encoding: .utf8)
        // The mirror is the network: one retry absorbs a transient fetch failure; a second failure fails the test.
        let base: String
        do {
            base = try bed.engine().composeTree(treefile, repo: nil)
        } catch {
            print("compose tree failed once, retrying: \(error)")
            base = try bed.engine().composeTree(treefile, repo: nil)
        }
        _ = try bed.engine().rebase("debian/bookworm/minbase")
        #expect(try bed.defaultChecksum == base)
        #expect(try bed.packageNames().contains("dpkg"))
        #expect(try !bed.packageNames().contains("curl"))

        // The admin edits /etc/passwd locally before layering.
        let etc = try bed.deploymentDirectory() + "/etc"
        try Shell.run("echo 'admin:x:1000:1000:Admin:/home/admin:/bin/sh' >> \(etc)/passwd")

        // A local package whose postinst runs Debian's real `adduser --system`.
        let src = "\(bed.fixtures)/svc"
        try Shell.run(
            """
            mkdir -p \(src)/DEBIAN \(src)/usr/share/doc/fixture-svc && echo doc > \(src)/usr/share/doc/fixture-svc/README &&
            printf 'Package: fixture-svc\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@localhost>\\nDepends: adduser\\nDescription: svc\\n' > \(src)/DEBIAN/control &&
            printf '#!/bin/sh\\nset -e\\nadduser --system --group --no-create-home --home /nonexistent svcuser\\n' > \(src)/DEBIAN/postinst &&
            chmod 755 \(src)/DEBIAN/postinst && dpkg-deb --root-owner-group --build \(src) \(bed.fixtures)/fixture-svc.deb >/dev/null
            """)
        let result = try bed.engine().install(["curl", "\(bed.fixtures)/fixture-svc.deb"])
        #expect(result.diff?.added.contains { $0.name == "libcurl4" } == true)
        let dir = try bed.deploymentDirectory()
        let passwd = try String(contentsOfFile: "\(dir)/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("admin:x:1000") && passwd.contains("svcuser:"))
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
        #expect(output.contains("curl 7."))
        #expect(output.contains("curl install ok installed"))
        #expect(output.contains("user-ok"))
        #expect(output.contains("usr-readonly"))
    }
}
