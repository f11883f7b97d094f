import Foundation
import TestSupport
import Testing

/// `apply-live` and `install --apply-live` on a host libostree sees as booted (the booted-container
/// harness): the transient overlay on /usr, /etc, accounts, /var, the dpkg database, status, the
/// refusals that change nothing, an interrupted apply that resumes or resets, and the next boot
/// booting the pending deployment exactly as staged. docs/apply-live.md.
@Suite("apply-live on a booted host", .asRoot, .offPool)
struct ApplyLiveTests {
    /// Runs `script` (sh) in one boot of `bed`'s sysroot; returns its status and output.
    static func boot(_ bed: TestBed, _ script: String, name: String = #function) throws -> (Int32, String) {
        let file = "\(bed.fixtures)/live-\(abs(name.hashValue))-\(UUID().uuidString.prefix(6)).sh"
        let prelude = "cli() { \(Paths.cli) \"$@\" --sysroot /; }\n"
        try (prelude + script).write(toFile: file, atomically: true, encoding: .utf8)
        return try Shell.status(StagedDeploymentTests.boot(bed) + " /bin/sh \(file) 2>&1")
    }

    /// The success path, then the reboot: the packages work at once (program, library, /etc file,
    /// /var directory, system account, dpkg database, an enabled unit reported as not started), /usr stays read-only to everyone, status
    /// says what is live; after the reboot the staged deployment is booted with the same packages,
    /// and nothing live is left.
    @Test func installApplyLiveWorksNowAndTheNextBootIsTheStagedDeployment() throws {
        let bed = try TestBed()
        let (rc, out) = try Self.boot(
            bed,
            """
            cli install --apply-live fixture-app fixture-conf fixture-vardir fixture-user fixture-service; echo "rc=$?"
            fixture-app
            cat /etc/fixture-conf.conf
            test -d /var/lib/fixture-vardir && echo vardir-present
            grep -c '^fixtured:' /etc/passwd /etc/group
            dpkg-query -W -f='${Package} ${Status}\\n' fixture-app fixture-lib
            touch /usr/should-not-exist 2>/dev/null && echo usr-writable || echo usr-read-only
            cli status -v | grep -E 'Live|Commit'
            cli status --json | grep -c '"live"'
            ostree admin status | grep -i unlocked
            ls -d /var/tmp/ostree-unlock-ovl.* | wc -l
            cat /run/harness/deployment
            /run/harness/reboot
            """)
        #expect(rc == 0, "\(out)")
        #expect(out.contains("rc=0"), "\(out)")
        #expect(out.contains("fixture-app 1.0\n"), "\(out)")
        #expect(out.contains("setting=default"), "\(out)")
        #expect(out.contains("vardir-present"), "\(out)")
        #expect(out.contains("/etc/passwd:1") && out.contains("/etc/group:1"), "\(out)")
        #expect(out.contains("fixture-app install ok installed") && out.contains("fixture-lib install ok installed"), "\(out)")
        #expect(out.contains("usr-read-only"), "\(out)")
        #expect(out.contains("LiveCommit:") && out.contains("(applied live)") && out.contains("LiveDiff: 6 added"), "\(out)")
        // No systemd in the harness: the unit the new package enables is reported, not started.
        #expect(out.contains("Enabled, not started: fixture-live.service."), "\(out)")
        #expect(out.contains("LiveNotStarted: fixture-live.service"), "\(out)")
        #expect(out.contains("LiveAdded: ") && out.contains("fixture-app 1.0"), "\(out)")
        #expect(out.contains("Unlocked: transient"), "\(out)")
        let live = out.split(separator: "\n").first { $0.contains("LiveCommit:") }.map { String($0.split(separator: " ")[1]) } ?? "?"
        let staged = out.split(separator: "\n").first { $0.contains("Commit:") && !$0.contains("Live") && !$0.contains("Base") }
        #expect(staged?.contains(live) == true, "the live commit is the staged one: \(out)")

        let (rc2, after) = try Self.boot(
            bed,
            """
            cat /run/harness/deployment
            fixture-app
            dpkg-query -W -f='${Package} ${Status}\\n' fixture-app
            cli status | grep -c Live
            cli uninstall -q fixture-conf >/dev/null; ls -d /var/tmp/ostree-unlock-ovl.* 2>/dev/null | wc -l
            """)
        #expect(rc2 == 0, "\(after)")
        #expect(after.contains(live), "booted the staged deployment \(live): \(after)")
        #expect(after.contains("fixture-app 1.0\n") && after.contains("fixture-app install ok installed"), "\(after)")
        let counts = after.split(separator: "\n").suffix(2)
        #expect(Array(counts) == ["0", "0"], "no live state and no overlay directory after the reboot: \(after)")
    }

    /// Bad input changes nothing, with one line each: a sysroot that is not booted, no pending
    /// deployment, a removal without --allow-replacement (then with it), a kernel module, an account
    /// whose uid a local account has.
    @Test func refusalsChangeNothingAndAllowReplacementRemoves() throws {
        let bed = try TestBed()
        let notBooted = try Shell.status("\(Paths.cli) apply-live --sysroot \(bed.sysroot) 2>&1")
        #expect(notBooted.0 == 1 && notBooted.1.contains("apply-live needs a booted host"), "\(notBooted)")

        let (_, first) = try Self.boot(
            bed,
            """
            cli apply-live; echo "rc=$?"
            echo 'local:x:901:901::/home/local:/bin/sh' >> /etc/passwd
            cli install -q --apply-live fixture-user; echo "rc=$?"
            cli install -q --apply-live fixture-module; echo "rc=$?"
            cli install -q fixture-app && /run/harness/reboot
            """)
        #expect(
            first.contains("error: nothing to apply: no pending deployment (install --apply-live layers and applies in one step)\nrc=1"), "\(first)")
        #expect(first.contains("collides with the local local in /etc/passwd") && first.contains("(uid 901)"), "\(first)")
        #expect(first.contains("apply-live cannot change the kernel or its modules (/usr/lib/modules"), "\(first)")
        #expect(first.contains("package fixture-module"), "\(first)")
        #expect(first.components(separatedBy: "rc=1").count == 4, "three refusals: \(first)")

        let (_, second) = try Self.boot(
            bed,
            """
            cli uninstall -q fixture-app
            cli apply-live; echo "rc=$?"
            fixture-app; ls -d /var/tmp/ostree-unlock-ovl.* 2>/dev/null | wc -l; cli status | grep -c Live
            cli apply-live --allow-replacement -q; echo "rc=$?"
            test -e /usr/bin/fixture-app || echo fixture-app-gone
            dpkg-query -W fixture-app 2>&1 | head -n1
            cli status -v | grep LiveRemoved
            """)
        #expect(second.contains("apply-live would remove 2 package(s) (fixture-app, fixture-lib); use --allow-replacement\nrc=1"), "\(second)")
        #expect(second.contains("rc=1\nfixture-app 1.0\n0\n0\n"), "refused: nothing mounted, nothing live: \(second)")
        #expect(second.contains("rc=0\nfixture-app-gone"), "\(second)")
        #expect(second.contains("no packages found matching fixture-app"), "\(second)")
        #expect(second.contains("LiveRemoved: fixture-app, fixture-lib"), "\(second)")
    }

    /// A pending deployment on another base is for a reboot: refused with nothing mounted, unless
    /// --allow-replacement.
    @Test func aPendingBaseChangeIsRefused() throws {
        let bed = try TestBed()
        try bed.composeBase(version: "2.0", note: "2")
        let (_, out) = try Self.boot(
            bed,
            """
            cli upgrade -q
            cli apply-live; echo "rc=$?"
            ls -d /var/tmp/ostree-unlock-ovl.* 2>/dev/null | wc -l; cat /etc/base-note
            """)
        #expect(out.contains("error: the pending deployment changes the base ("), "\(out)")
        #expect(out.contains("reboot into it, or apply it live with --allow-replacement\nrc=1\n0\nbase-note 1\n"), "\(out)")
    }

    /// An apply killed after it wrote /usr (before /etc, or before the dpkg database) is reported as in progress
    /// and another target is refused; running apply-live again finishes it; --reset goes back to
    /// the booted /usr, and removes the /etc file it wrote, keeping an admin's edited one.
    @Test(arguments: ["live-usr-written", "live-before-database"])
    func anInterruptedApplyResumesAndResetRestores(_ fault: String) throws {
        let bed = try TestBed()
        let (_, out) = try Self.boot(
            bed,
            """
            echo mine > /etc/fixture-conf.conf
            APT_LAYER_TEST_FAULT=\(fault) cli install -q --apply-live fixture-app fixture-conf; echo "rc=$?"
            cli status | grep LiveInProgress
            dpkg-query -W fixture-app >/dev/null 2>&1 && echo listed || echo not-listed
            cli apply-live; echo "rc=$?"
            cli status | grep -c LiveInProgress
            dpkg-query -W -f='${Status}\\n' fixture-app; fixture-app; cat /etc/fixture-conf.conf
            cli status | grep LiveKeptEtc
            cli install -q --apply-live fixture-vardir >/dev/null; echo "rc=$?"
            test -f /etc/fixture-conf.conf && echo conf-kept
            cli apply-live --reset; echo "rc=$?"
            test -e /usr/bin/fixture-app || echo fixture-app-gone
            test -d /usr/share/doc/fixture-vardir || echo vardir-doc-gone
            cat /etc/fixture-conf.conf
            cli status | grep -c Live
            """)
        #expect(out.contains("rc=1"), "the killed apply fails: \(out)")
        #expect(out.contains("LiveInProgress: ") && out.contains("interrupted at"), "\(out)")
        #expect(out.contains("not-listed"), "the dpkg database is written last: \(out)")
        #expect(out.contains("rc=0\n0\ninstall ok installed\nfixture-app 1.0\nmine\n"), "resumed: \(out)")
        #expect(out.contains("LiveKeptEtc: fixture-conf.conf"), "\(out)")
        #expect(out.contains("conf-kept"), "\(out)")
        #expect(out.contains("fixture-app-gone") && out.contains("vardir-doc-gone"), "reset: \(out)")
        #expect(out.hasSuffix("mine\n0\n"), "the admin's file stays, nothing live: \(out)")
    }
}
