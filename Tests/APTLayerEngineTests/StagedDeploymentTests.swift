import Foundation
import TestSupport
import Testing

/// Staged deployments on a host libostree sees as booted (Tests/Fixtures/harness/boot-container.sh): the
/// real stage, `finalize-staged` at "shutdown", and the next boot.
@Suite("staged deployments on a booted host", .asRoot, .offPool)
struct StagedDeploymentTests {
    static let harness = "\(Paths.fixtures)/harness/boot-container.sh"

    /// The command that boots `bed`'s sysroot in the harness once (append the command to run there),
    /// with the built programs and the bed's fixtures bound in and its boots counted in `boots`.
    static func boot(_ bed: TestBed) -> String {
        let bin = URL(fileURLWithPath: Paths.cli).deletingLastPathComponent().path
        return "\(harness) -b \(bin) -b \(bed.fixtures) \(bed.sysroot) \(bed.fixtures)/boots --"
    }

    /// A locally edited /etc/passwd wins whole in libostree's /etc merge at finalize, so the account
    /// a maintainer script created for the staged deployment used to vanish. The engine keeps such
    /// accounts and adds them at the first locked operation after the reboot.
    @Test func accountsCreatedByScriptsSurviveFinalize() throws {
        let bed = try TestBed()
        let boot = Self.boot(bed)
        let first = try Shell.status(
            boot
                + " /bin/sh -c 'echo local:x:1500:1500::/home/local:/bin/sh >> /etc/passwd && \(Paths.cli) install -q --sysroot / fixture-user && /run/harness/reboot'"
        )
        #expect(first.0 == 0, "\(first.1)")
        #expect(try Shell.run("\(Self.harness) last \(bed.fixtures)/boots").contains("reboot"))
        let second = try Shell.run(
            boot
                + " /bin/sh -c 'grep -c ^fixtured: /etc/passwd; \(Paths.cli) pin -q --sysroot / 0 >/dev/null; grep -c ^fixtured: /etc/passwd; grep -c ^fixtured: /etc/group; grep -c ^local: /etc/passwd; dpkg-query -W -f=\"\\${Status}\\n\" fixture-user'"
        )
        let lines = second.split(separator: "\n").map(String.init)
        // Booted into the staged deployment: before the first locked operation the account is
        // missing from the merged passwd, after it the account is there and the local edit stays.
        #expect(lines.prefix(4) == ["0", "1", "1", "1"], "\(second)")
        #expect(second.contains("install ok installed"), "\(second)")
    }

    /// `override replace` on a booted host: the replacement is staged, finalized at the reboot, and
    /// the booted deployment carries the new version, listed as a replaced base package.
    @Test func aReplacedBasePackageIsStagedAndBootedIntoAfterFinalize() throws {
        let bed = try TestBed()
        let deb = try OverrideReplaceTests.deb(bed, "fixture-base", "2.0")
        let boot = Self.boot(bed)
        let staged = try Shell.status(boot + " /bin/sh -c '\(Paths.cli) override replace -q --sysroot / \(deb) && /run/harness/reboot'")
        #expect(staged.0 == 0, "\(staged.1)")
        #expect(try Shell.run("\(Self.harness) last \(bed.fixtures)/boots").contains("reboot"))
        let booted = try Shell.run(
            boot + " /bin/sh -c 'cat /usr/share/fixture-base/VERSION; \(Paths.cli) status --sysroot / | grep ReplacedBasePackages'")
        #expect(booted.contains("2.0\n"), "\(booted)")
        #expect(booted.contains("ReplacedBasePackages: fixture-base 1.0 → 2.0"), "\(booted)")
    }

    /// On a booted host libostree copies a staged deployment's kernel and initramfs into /boot only
    /// at finalization, at shutdown: a /boot without room for them is refused when the upgrade is
    /// staged (nothing staged, the host boots as before), and once there is room the same upgrade
    /// stages, finalizes and boots its kernel.
    @Test func aFullBootIsRefusedWhenStagingNotAtShutdown() throws {
        let bed = try TestBed()
        try SpacePreflightTests.separateBoot(bed, size: "40M")
        try SpacePreflightTests.composeBase(bed, version: "2.0", kernelMiB: 36, initramfsMiB: 8)
        let boot = Self.boot(bed)
        let refused = try Shell.run(
            boot
                + " /bin/sh -c '\(Paths.cli) upgrade -q --sysroot / 2>&1; echo \"rc=$?\"; test -e /run/ostree/staged-deployment && echo staged || echo nothing-staged; /run/harness/reboot'"
        )
        #expect(refused.contains("error: not enough space on /boot: need 45 MiB, have 39 MiB"), "\(refused)")
        #expect(refused.contains("rc=1") && refused.contains("nothing-staged"), "\(refused)")
        try Shell.run("mount -o remount,size=128M \(bed.sysroot)/boot")
        let staged = try Shell.status(boot + " /bin/sh -c '\(Paths.cli) upgrade -q --sysroot / && /run/harness/reboot'")
        #expect(staged.0 == 0, "\(staged.1)")
        let booted = try Shell.run(boot + " /bin/sh -c 'ls /usr/lib/modules; cat /etc/base-note'")
        #expect(booted.contains("6.1.0-2.0") && booted.contains("base-note 2.0"), "\(booted)")
    }

    /// On a booted host whose firmware enforces Secure Boot, an unsigned module is refused with
    /// nothing staged, and a signed one stages, finalizes and is in the booted deployment.
    @Test func secureBootRefusesUnsignedModulesOnABootedHost() throws {
        let bed = try TestBed()
        let efivars = try #require(try SecureBootModulesTests.efivars(bed, enforced: true)["APT_LAYER_TEST_EFIVARS"])
        let layer = "APT_LAYER_TEST_EFIVARS=\(efivars) \(Paths.cli) install -q --sysroot /"
        let refused = try Shell.run(
            Self.boot(bed)
                + " /bin/sh -c '\(layer) fixture-module 2>&1; echo \"rc=$?\"; test -e /run/ostree/staged-deployment && echo staged || echo nothing-staged'"
        )
        #expect(refused.contains("error: refused: fixture-module brings the unsigned kernel module"), "\(refused)")
        #expect(refused.contains("rc=1") && refused.contains("nothing-staged"), "\(refused)")
        let staged = try Shell.status(Self.boot(bed) + " /bin/sh -c '\(layer) fixture-module-signed && /run/harness/reboot'")
        #expect(staged.0 == 0, "\(staged.1)")
        let booted = try Shell.run(Self.boot(bed) + " /bin/sh -c 'ls /usr/lib/modules/0.0.0-apt-layer-stub/extra'")
        #expect(booted.contains("fixture-signed.ko"), "\(booted)")
    }

    /// Changes made before a reboot accumulate on the pending deployment, as rpm-ostree's do, and
    /// the reboot finalizes into exactly what `status` showed as pending: its commit, its base, its
    /// packages and its kernel arguments (issue 19: the second change used to replace the first,
    /// and a `kargs` after an install made finalization fail). Every verb that changes the next
    /// boot, in sequences of two and three.
    @Test(arguments: BootedSequence.all)
    func changesBeforeARebootAccumulateAndFinalize(_ row: BootedSequence) throws {
        let bed = try TestBed()
        // The booted deployment has kernel arguments of its own (a real host's root=, console=):
        // every sequence must keep them (a change staged without explicit arguments, then one
        // that carried its empty list, wrote a boot entry without root= that could not boot).
        try Shell.run("\(Paths.cli) kargs -q --append base=1 --append console=ttyS0 --sysroot \(bed.sysroot)")
        if row.newBase { try bed.composeBase(version: "2.0", note: "2") }
        let boot = Self.boot(bed)
        let commands = row.verbs.map { "\(Paths.cli) \($0) -q --sysroot /" }.joined(separator: " && ")
        let first = try Shell.status(
            boot + " /bin/sh -c '\(commands) && \(Paths.cli) status --json --sysroot / | tr -d \"\\n\" && echo && /run/harness/reboot'")
        #expect(first.0 == 0, "finalization failed after \(row.verbs): \(first.1)")
        let json = first.1.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let status = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(first.1)")
        let pending = try #require((status["deployments"] as? [[String: Any]])?.first, "\(json)")
        let pendingChecksum = try #require(pending["checksum"] as? String, "\(json)")
        #expect((pending["staged"] as? Bool) == row.stages, "\(row.verbs): staged \(pending["staged"] ?? "?")")

        let second = try Shell.run(
            boot + " /bin/sh -c 'cat /run/harness/deployment; cat /proc/cmdline; cat /etc/base-note; dpkg-query -W -f=\"\\${Package}\\n\"'")
        let lines = second.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains(pendingChecksum) == true, "booted \(lines.first ?? "") after \(row.verbs), pending was \(pendingChecksum)")
        let commandLine = lines.dropFirst().first ?? ""
        for karg in row.kargs + ["base=1", "console=ttyS0"] {
            #expect(commandLine.split(separator: " ").contains(Substring(karg)), "\(row.verbs): \(karg) missing from \(commandLine)")
            #expect((pending["kernelArguments"] as? String)?.split(separator: " ").contains(Substring(karg)) == true, "\(row.verbs): status \(json)")
        }
        #expect(lines.dropFirst(2).first == "base-note \(row.newBase ? 2 : 1)", "\(row.verbs): base note \(lines.dropFirst(2).first ?? "")")
        let packages = Set(lines.dropFirst(3))
        for name in BootedSequence.watched {
            #expect(packages.contains(name) == row.present.contains(name), "\(row.verbs): \(name) after the reboot; \(packages.sorted())")
        }
    }

    /// The boot counter across reboots (docs/boot-counting.md). The harness does not run GRUB, so
    /// between boots the test does what the counting menu does to the block (``BootMenu``, run for
    /// real in the VM tier) with GRUB's own `grub-editenv`, and boots the previous entry
    /// (`--fallback`) when the menu would. Staging arms the counter for the staged deployment; the
    /// trial boot is marked good; a spent counter falls back and `boot-check` makes the booted
    /// deployment the default again; `cleanup -p` disarms.
    @Test func bootCounterArmsMarksGoodAndFallsBack() throws {
        let bed = try TestBed()
        let grubenv = "\(bed.sysroot)/boot/grub/grubenv"
        try Shell.run("mkdir -p \(bed.sysroot)/boot/grub && grub-editenv \(grubenv) create")
        let boot = Self.boot(bed)
        let cli = "\(Paths.cli)"
        let counter = { () throws -> [String: Any] in
            let json = try Shell.run(boot + " \(cli) status --json --sysroot /")
            let doc = try #require((try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any], "\(json)")
            return try #require(doc["bootCounter"] as? [String: Any], "\(json)")
        }
        // The default deployment as the counter names it: CHECKSUM.SERIAL.
        let defaultDeployment = { () throws -> String in
            let d = try #require(try bed.status.deployments.first)
            return "\(d.checksum).\(d.serial)"
        }
        let first = try Shell.run(
            boot
                + " /bin/sh -c '\(cli) install -q --sysroot / fixture-app && cat /run/ostree/staged-deployment >/dev/null && \(cli) boot-check --sysroot / && /run/harness/reboot'"
        )
        #expect(first.contains("waiting for the reboot"), "\(first)")
        let staged = try defaultDeployment()
        #expect(try Shell.run("grub-editenv \(grubenv) list") == "apt_layer_tries=3\napt_layer_deployment=\(staged)\n")
        // The menu's first count: 3 → 2, the default entry boots. It comes up and is marked good.
        try Shell.run("grub-editenv \(grubenv) set apt_layer_tries=2")
        let trial = try counter()
        #expect(trial["state"] as? String == "armed" && trial["triesLeft"] as? Int == 2 && trial["deployment"] as? String == staged, "\(trial)")
        let good = try Shell.run(boot + " \(cli) boot-check --mark-good --sysroot /")
        #expect(good.contains("trial") && good.contains("Marked \(staged.prefix(12)) good"), "\(good)")
        #expect(try Shell.run("grub-editenv \(grubenv) list") == "")
        // A kernel-argument change that never comes up: every try spent, the menu falls back.
        try Shell.run(boot + " /bin/sh -c '\(cli) kargs -q --append apt_layer_test=broken --sysroot / && /run/harness/reboot'")
        let broken = try defaultDeployment()
        #expect(broken != staged)
        try Shell.run("grub-editenv \(grubenv) set apt_layer_tries=0 apt_layer_fell_back=1")
        let fellBack = try Shell.run(
            "\(Self.harness) --fallback -b \(URL(fileURLWithPath: cli).deletingLastPathComponent().path) -b \(bed.fixtures) \(bed.sysroot) \(bed.fixtures)/boots -- /bin/sh -c 'cat /run/harness/deployment; \(cli) boot-check --sysroot /; \(cli) status --sysroot /; \(cli) status --json --sysroot /'"
        )
        #expect(fellBack.hasPrefix("ostree/deploy/") && fellBack.split(separator: "\n").first?.hasSuffix(staged) == true, "\(fellBack)")
        #expect(fellBack.contains("Boot fell back from \(broken.prefix(12)) to \(staged.prefix(12))"), "\(fellBack)")
        #expect(fellBack.contains("LastBoot: fell back from \(broken.prefix(12))"), "\(fellBack)")
        #expect(try defaultDeployment() == staged, "the booted deployment is the default again")
        #expect(try Shell.run("grub-editenv \(grubenv) list") == "")
        // `status --json` comes last and is pretty-printed: from its first line to the end.
        let json = fellBack.range(of: "\n{\n").map { String(fellBack[$0.lowerBound...]) } ?? "{}"
        let doc = try #require((try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any], "\(fellBack)")
        let fallback = try #require((doc["bootCounter"] as? [String: Any])?["fallback"] as? [String: Any], "\(json)")
        #expect(fallback["failedDeployment"] as? String == broken && fallback["bootedDeployment"] as? String == staged, "\(json)")
        // The next boot (the default, no fall-back) shows no fall-back; staging arms, cleanup -p disarms.
        let disarmed = try Shell.run(
            boot
                + " /bin/sh -c '\(cli) install -q --sysroot / fixture-user; grub-editenv /boot/grub/grubenv list; \(cli) cleanup -q -p --sysroot /; echo after; grub-editenv /boot/grub/grubenv list; \(cli) status --sysroot /'"
        )
        #expect(disarmed.contains("apt_layer_tries=3") && !disarmed.contains("LastBoot"), "\(disarmed)")
        let after = disarmed.components(separatedBy: "after\n").last ?? ""
        #expect(!after.contains("apt_layer_tries") && !after.contains("BootCounter:"), "\(disarmed)")
    }

    /// Across reboots on a booted host: a change, a reboot, `pin` and `rollback`, a reboot into the
    /// previous deployment, then `cleanup -r` that removes the unpinned rollback deployment.
    @Test func rollbackPinAndCleanupAcrossReboots() throws {
        let bed = try TestBed()
        let boot = Self.boot(bed)
        let original = try bed.defaultChecksum
        let cli = "\(Paths.cli)"
        try Shell.run(boot + " /bin/sh -c '\(cli) install -q --sysroot / fixture-app && /run/harness/reboot'")
        let second = try Shell.run(
            boot + " /bin/sh -c 'fixture-app; \(cli) pin -q --sysroot / 1 && \(cli) rollback -q --sysroot / && /run/harness/reboot'")
        #expect(second.contains("fixture-app 1.0"), "\(second)")
        let third = try Shell.run(
            boot
                + " /bin/sh -c 'cat /run/harness/deployment; command -v fixture-app || echo absent; \(cli) cleanup -q -r --sysroot /; \(cli) status --json --sysroot / | tr -d \"\\n\"; echo'"
        )
        let lines = third.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains(original) == true, "rollback booted \(lines.first ?? "") instead of \(original)")
        #expect(lines.contains("absent"), "\(third)")
        let json = lines.first { $0.hasPrefix("{") } ?? "{}"
        let status = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(third)")
        let deployments = try #require(status["deployments"] as? [[String: Any]], "\(json)")
        // The pinned deployment (the original, booted) stays; the unpinned rollback one is gone.
        #expect(deployments.count == 1 && deployments.first?["checksum"] as? String == original, "\(json)")
        #expect(deployments.first?["pinned"] as? Bool == true, "\(json)")
    }
}

/// One sequence of changes before a reboot, and what the next boot must run.
struct BootedSequence: CustomTestStringConvertible, Sendable {
    var verbs: [String]
    /// Which of ``watched`` are installed after the reboot.
    var present: Set<String>
    var kargs: [String] = []
    /// A new base (version 2.0) is published before the changes (for `upgrade`).
    var newBase = false
    /// Whether a deployment is staged when the changes are done (`cleanup -p` removes it).
    var stages = true

    var testDescription: String { verbs.joined(separator: "; ") }

    static let watched = ["fixture-app", "fixture-conf", "fixture-vardir", "fixture-removable"]

    static let all: [BootedSequence] = [
        .init(verbs: ["install fixture-app", "install fixture-conf"], present: ["fixture-app", "fixture-conf", "fixture-removable"]),
        .init(verbs: ["install fixture-conf", "kargs --append x=1"], present: ["fixture-conf", "fixture-removable"], kargs: ["x=1"]),
        .init(verbs: ["kargs --append x=1", "install fixture-conf"], present: ["fixture-conf", "fixture-removable"], kargs: ["x=1"]),
        .init(verbs: ["install fixture-app", "uninstall fixture-app"], present: ["fixture-removable"]),
        .init(
            verbs: ["install fixture-app", "kargs --append x=1", "install fixture-conf"],
            present: ["fixture-app", "fixture-conf", "fixture-removable"],
            kargs: ["x=1"]),
        .init(
            verbs: ["install fixture-conf", "install fixture-vardir", "uninstall fixture-conf"], present: ["fixture-vardir", "fixture-removable"]),
        .init(verbs: ["override remove fixture-removable", "install fixture-app"], present: ["fixture-app"]),
        .init(verbs: ["install fixture-app", "override remove fixture-removable"], present: ["fixture-app"]),
        .init(
            verbs: ["override remove fixture-removable", "kargs --append x=1", "override reset fixture-removable"], present: ["fixture-removable"],
            kargs: ["x=1"]),
        .init(verbs: ["upgrade", "install fixture-app"], present: ["fixture-app", "fixture-removable"], newBase: true),
        .init(verbs: ["install fixture-app", "upgrade"], present: ["fixture-app", "fixture-removable"], newBase: true),
        .init(
            verbs: ["install fixture-app", "kargs --append x=1", "upgrade"], present: ["fixture-app", "fixture-removable"], kargs: ["x=1"],
            newBase: true),
        .init(verbs: ["install fixture-app", "cleanup -p"], present: ["fixture-removable"], stages: false),
        .init(verbs: ["install fixture-app", "cleanup -p", "install fixture-conf"], present: ["fixture-conf", "fixture-removable"]),
    ]
}
