import APTLayerEngine
import APTLayerModel
import Foundation
import OSTree
import TestSupport
import Testing

@Suite("Layering on a tmpfs sysroot", .asRoot, .offPool)
struct LayeringTests {
    @Test func installPullsDependenciesAndRecordsMetadata() throws {
        let bed = try TestBed()
        let result = try bed.engine().install(["fixture-app"])
        #expect(result.changed)
        #expect(try bed.packageNames().contains("fixture-app"))
        #expect(try bed.packageNames().contains("fixture-lib"))
        let status = try bed.status
        #expect(status.deployments.count == 2)
        #expect(status.deployments[0].requestedPackages == ["fixture-app"])
        #expect(status.deployments[0].baseChecksum == bed.baseChecksum)
        #expect(status.deployments[1].checksum == bed.baseChecksum)

        let commit = try bed.repoHandle().commit(status.deployments[0].checksum)
        #expect(commit.parent == bed.baseChecksum)
        #expect(commit.bool("apt-layer.clientlayer") == true)
        #expect(commit.string("version") == "1.0")
        #expect(commit.strings("apt-layer.packages") == ["fixture-app"])
        #expect(commit.strings("apt-layer.pkglist")?.contains("fixture-lib 1.0 all") == true)
        #expect(commit.string("apt-layer.inputs-sha256")?.count == 64)
        #expect(try bed.repoHandle().resolve("apt-layer/base/\(bed.baseChecksum)") == bed.baseChecksum)
        let app = try bed.deploymentDirectory() + "/usr/bin/fixture-app"
        #expect(try Shell.run(app).contains("fixture-app 1.0"))
        #expect(bed.leftovers.isEmpty)
    }

    /// A build in an overlay over the kept base checkout commits exactly the tree a build in a full
    /// hardlink checkout commits: every path, content and metadata checksum, with a removed base
    /// package (whiteouts), a conffile, /var, script-created accounts, /etc changes, and a base
    /// directory turned into a symlink and a base file into a directory (no overlay marker) in it.
    @Test func overlayBuildCommitsTheSameTreeAsAFullCheckout() throws {
        let bed = try TestBed()
        func build(_ environment: [String: String]) throws -> String {
            for command in ["install fixture-app fixture-conf fixture-vardir fixture-user fixture-reshape", "override remove fixture-removable"] {
                try Shell.run("\(Paths.cli) \(command) -q --sysroot \(bed.sysroot)", environment: environment)
            }
            let listing = try Shell.run("ostree ls --repo=\(bed.sysroot)/ostree/repo -R -C \(bed.defaultChecksum) /")
            try Shell.run("\(Paths.cli) uninstall --all -q --sysroot \(bed.sysroot)", environment: environment)
            try Shell.run("\(Paths.cli) override reset --all -q --sysroot \(bed.sysroot)", environment: environment)
            return listing
        }
        let overlay = try build(TestBed.environment)
        #expect(FileManager.default.fileExists(atPath: "\(bed.sysroot)/ostree/apt-layer/checkouts/\(bed.baseChecksum)/etc"))
        let full = try build(TestBed.environment.merging(["APT_LAYER_TEST_NO_OVERLAY": "1"]) { $1 })
        #expect(overlay.split(separator: "\n").count > 100)
        #expect(overlay.contains("/usr/bin/fixture-app") && !overlay.contains("fixture-removable/README"))
        #expect(overlay.contains("/usr/etc/base-note/inner") && overlay.contains("/usr/share/fixture-base -> doc"))
        #expect(overlay == full)
        #expect(bed.leftovers.isEmpty)
    }

    @Test func sameInputsChangeNothing() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        let before = try bed.status
        let again = try bed.engine().install(["fixture-app"], flags: .init(idempotent: true))
        #expect(!again.changed)
        #expect(try bed.status == before)
        #expect(throws: EngineError.self) { try bed.engine().install(["fixture-app"]) }
        // rpm-ostree's habit: a no-op exits 0, and 77 only when asked (`set -e` scripts keep working).
        let (code, output) = try Shell.status(
            "\(Paths.cli) install --idempotent -q --sysroot \(bed.sysroot) fixture-app", environment: TestBed.environment)
        #expect(code == 0 && output.contains("No change."), "\(output)")
        let (asked, _) = try Shell.status(
            "\(Paths.cli) install --idempotent -q --unchanged-exit-77 --sysroot \(bed.sysroot) fixture-app", environment: TestBed.environment)
        #expect(asked == 77)
    }

    @Test func uninstallReturnsToTheBase() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app", "fixture-conf"])
        _ = try bed.engine().uninstall(["fixture-conf"])
        #expect(try !bed.packageNames().contains("fixture-conf"))
        #expect(try bed.packageNames().contains("fixture-app"))
        _ = try bed.engine().uninstall([], all: true)
        #expect(try bed.defaultChecksum == bed.baseChecksum)
        #expect(throws: EngineError.self) { try bed.engine().uninstall(["fixture-app"]) }
    }

    @Test func localDebIsStoredAndSurvivesUpgrade() throws {
        let bed = try TestBed()
        let file = "\(bed.debs)/fixture-local-1.0.deb"
        _ = try bed.engine().install([file])
        let status = try bed.status
        let sha = try Shell.run("sha256sum \(file) | cut -d' ' -f1").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(status.deployments[0].requestedLocalPackages.map(\.recordForm) == ["\(sha):fixture-local_1.0_all"])
        #expect(FileManager.default.fileExists(atPath: "\(bed.sysroot)/ostree/apt-layer/local/\(sha)_fixture-local_1.0_all.deb"))
        let newBase = try bed.composeBase(version: "2.0", note: "2")
        _ = try bed.engine().upgrade()
        #expect(try bed.status.deployments[0].baseChecksum == newBase)
        #expect(try bed.packageNames().contains("fixture-local"))
    }

    @Test func overrideRemoveAndReset() throws {
        let bed = try TestBed()
        _ = try bed.engine().overrideRemove(["fixture-removable"])
        #expect(try !bed.packageNames().contains("fixture-removable"))
        #expect(try bed.status.deployments[0].requestedBaseRemovals == ["fixture-removable"])
        #expect(!FileManager.default.fileExists(atPath: try bed.deploymentDirectory() + "/usr/share/fixture-removable/README"))
        _ = try bed.engine().overrideReset(["fixture-removable"])
        #expect(try bed.packageNames().contains("fixture-removable"))
        #expect(try bed.defaultChecksum == bed.baseChecksum)
    }

    @Test func upgradeKeepsLayeringAndPicksNewVersions() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        #expect(try !bed.engine().upgrade(check: true).changed)
        let newBase = try bed.composeBase(version: "2.0", note: "2")
        #expect(try bed.engine().upgrade(check: true).changed)
        _ = try bed.engine().upgrade()
        let status = try bed.status
        #expect(status.deployments[0].baseChecksum == newBase)
        #expect(status.deployments[0].version == "2.0")
        #expect(try String(contentsOfFile: bed.deploymentDirectory() + "/etc/base-note", encoding: .utf8).contains("2"))
        #expect(try bed.packageNames().contains("fixture-app"))

        try bed.publish("fixture-app-2.0.deb")
        _ = try bed.engine().upgrade()
        #expect(try bed.engine().packages(deployment: 0).contains { $0.name == "fixture-app" && $0.version == "2.0" })
        #expect(try !bed.engine().upgrade().changed)
    }

    @Test func deployVersionAndRebase() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        try bed.composeBase(version: "2.0", note: "2")
        _ = try bed.engine().upgrade()
        _ = try bed.engine().deploy("1.0")
        #expect(try bed.status.deployments[0].baseChecksum == bed.baseChecksum)
        #expect(try bed.packageNames().contains("fixture-app"))
        #expect(throws: EngineError.self) { try bed.engine().deploy("9.9") }

        let other = try bed.composeBase(ref: "test/other", version: "7.0", note: "other")
        _ = try bed.engine().rebase("test/other")
        let status = try bed.status
        #expect(status.deployments[0].origin == "test/other")
        #expect(status.deployments[0].baseChecksum == other)
        #expect(try bed.packageNames().contains("fixture-app"))
    }

    /// What the fleet driver does: a remote configured from the policy, then `rebase REMOTE:REF
    /// CHECKSUM` pulls just the pinned commit (not the ref's newer head) and keeps the layering.
    @Test func rebaseToAPinnedCommitOfARemote() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        let remote = "\(bed.fixtures)/remote-repo"
        try Shell.run("ostree init --repo=\(remote) --mode=archive")
        let dir = "\(bed.fixtures)/rootfs-r"
        try Shell.run(
            "\(Paths.fixtures)/builders/make-rootfs.sh \(dir)1 \(bed.debs) \(bed.repo) r1 && \(Paths.fixtures)/builders/make-rootfs.sh \(dir)2 \(bed.debs) \(bed.repo) r2"
        )
        let pinned = try bed.engine().composeRootfs("\(dir)1", repo: remote, options: .init(ref: "acme/stable", version: "2026.1", stubKernel: true))
        let head = try bed.engine().composeRootfs("\(dir)2", repo: remote, options: .init(ref: "acme/stable", version: "2026.2", stubKernel: true))
        #expect(try bed.engine().setRemote(name: "acme", url: "file://\(remote)"))
        #expect(try !bed.engine().setRemote(name: "acme", url: "file://\(remote)"))

        let missing = String(repeating: "ab", count: 32)
        let before = try bed.status
        #expect(throws: EngineError.self) { try bed.engine().rebase("acme:acme/stable", revision: missing) }
        #expect(try bed.status == before)
        #expect(bed.leftovers.isEmpty)

        _ = try bed.engine().rebase("acme:acme/stable", revision: pinned)
        let status = try bed.status
        #expect(status.deployments[0].baseChecksum == pinned)
        #expect(status.deployments[0].origin == "acme:acme/stable")
        #expect(try bed.packageNames().contains("fixture-app"))
        #expect(try String(contentsOfFile: "\(bed.deploymentDirectory())/etc/base-note", encoding: .utf8) == "base-note r1\n")
        // Only the pinned commit came over: the newer head is not in the host's repository.
        #expect(try Shell.status("ostree --repo=\(bed.sysroot)/ostree/repo show \(head) >/dev/null 2>&1").0 != 0)
    }

    /// The fleet driver's staging is one transaction: `rebase --remote-url` adds the remote under
    /// the transaction's lock; a bad URL or a refspec without a remote changes nothing.
    @Test func rebaseConfiguresItsRemoteInTheTransaction() throws {
        let bed = try TestBed()
        let remote = "\(bed.fixtures)/remote-repo"
        try Shell.run("ostree init --repo=\(remote) --mode=archive")
        try Shell.run("\(Paths.fixtures)/builders/make-rootfs.sh \(bed.fixtures)/rootfs-r \(bed.debs) \(bed.repo) r1")
        let pinned = try bed.engine().composeRootfs(
            "\(bed.fixtures)/rootfs-r", repo: remote, options: .init(ref: "acme/stable", version: "2026.1", stubKernel: true))
        let remotes = "ostree --repo=\(bed.sysroot)/ostree/repo remote list"
        let before = try bed.status
        for (refspec, url) in [("acme:acme/stable", "ftp://example/repo"), ("acme/stable", "file://\(remote)"), ("a b:x", "file://\(remote)")] {
            let refused = try Shell.status("\(Paths.cli) rebase -q --sysroot \(bed.sysroot) --remote-url '\(url)' '\(refspec)' \(pinned)")
            #expect(refused.0 != 0 && refused.1.split(separator: "\n").count == 1, "\(refspec) \(url): \(refused.1)")
            #expect(refused.1.hasPrefix("error:"), "\(refused.1)")
        }
        #expect(try bed.status == before)
        #expect(try Shell.run(remotes).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        _ = try bed.engine().rebase("acme:acme/stable", revision: pinned, remoteURL: "file://\(remote)")
        #expect(try Shell.run(remotes).trimmingCharacters(in: .whitespacesAndNewlines) == "acme")
        #expect(try bed.status.deployments[0].baseChecksum == pinned)
    }

    @Test func rollbackAndRollbackOfRollback() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        let layered = try bed.defaultChecksum
        _ = try bed.engine().rollback()
        #expect(try bed.defaultChecksum == bed.baseChecksum)
        #expect(try bed.status.deployments.count == 2)
        _ = try bed.engine().rollback()
        #expect(try bed.defaultChecksum == layered)
    }

    @Test func cleanupKeepsPinned() throws {
        let bed = try TestBed()
        _ = try bed.engine().setPinned(index: 0, true)
        _ = try bed.engine().install(["fixture-app"])
        _ = try bed.engine().install(["fixture-conf"])
        var status = try bed.status
        #expect(status.deployments.count == 3)
        _ = try bed.engine().cleanup(pending: false, rollback: true)
        status = try bed.status
        #expect(status.deployments.count == 2)
        #expect(status.deployments.contains { $0.pinned && $0.checksum == bed.baseChecksum })
        _ = try bed.engine().setPinned(index: 1, false)
        _ = try bed.engine().cleanup(pending: false, rollback: true)
        #expect(try bed.status.deployments.count == 1)
        #expect(throws: EngineError.self) { try bed.engine().setPinned(index: 7, true) }
    }

    @Test func kernelArgumentsMakeANewDeployment() throws {
        let bed = try TestBed()
        _ = try bed.engine().kernelArguments(.init(append: ["quiet", "apt.layer=1"]))
        var status = try bed.status
        #expect(status.deployments.count == 2)
        #expect(status.deployments[0].kernelArguments.contains("apt.layer=1"))
        _ = try bed.engine().kernelArguments(.init(replace: ["apt.layer=1=2"]))
        status = try bed.status
        #expect(status.deployments[0].kernelArguments.contains("apt.layer=2"))
        _ = try bed.engine().kernelArguments(.init(delete: ["apt.layer=2"]))
        #expect(try !bed.status.deployments[0].kernelArguments.contains("apt.layer"))
        #expect(throws: EngineError.self) { try bed.engine().kernelArguments(.init(delete: ["absent=1"])) }
    }

    @Test func dbDiffBetweenDeployments() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app"])
        let report = try bed.engine().packageDiff(from: "1", to: "0")
        #expect(report.diff.added.map(\.name) == ["fixture-app", "fixture-lib"])
        #expect(report.diff.removed.isEmpty)
        let (code, output) = try Shell.status("\(Paths.cli) db diff --sysroot \(bed.sysroot)", environment: TestBed.environment)
        #expect(code == 0)
        let status = try bed.status
        #expect(
            output
                == """
                ostree diff commit from: rollback deployment (\(status.deployments[1].checksum))
                ostree diff commit to:   pending deployment (\(status.deployments[0].checksum))
                Added:
                  fixture-app 1.0 all
                  fixture-lib 1.0 all

                """, "\(output)")
        // Selectors: a checksum prefix of a deployment, a ref, a full commit checksum; bad ones are one line.
        let base = status.deployments[1].checksum
        let byRef = try bed.engine().packageDiff(from: "apt-layer/base/\(base)", to: String(status.deployments[0].checksum.prefix(10)))
        #expect(byRef.diff == report.diff && byRef.from.checksum == base && byRef.from.label == "apt-layer/base/\(base)")
        #expect(try bed.engine().packageDiff(from: base, to: "0").diff == report.diff)
        let (bad, message) = try Shell.status("\(Paths.cli) db diff --sysroot \(bed.sysroot) 7 2>&1", environment: TestBed.environment)
        #expect(bad == 1 && message == "error: no deployment at index 7 (there are 2)\n", "\(message)")
        let (unknown, why) = try Shell.status("\(Paths.cli) db diff --sysroot \(bed.sysroot) no/such-ref 0 2>&1", environment: TestBed.environment)
        #expect(unknown == 1 && why.hasPrefix("error: no/such-ref is not a deployment index") && why.split(separator: "\n").count == 1, "\(why)")
    }

    /// The finding of issue 11: a change's diff is against the deployment it replaces, not the
    /// base; an uninstall lists what it removes, a dry run the names it would add.
    @Test func changesPrintTheirDiffAgainstTheReplacedDeployment() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-app", "fixture-vardir"])
        let env = TestBed.environment
        let dry = try Shell.status("\(Paths.cli) install -q -n --sysroot \(bed.sysroot) fixture-conf", environment: env)
        #expect(dry.0 == 0)
        #expect(dry.1 == "Added:\n  fixture-conf 1.0 all\nWould change 1 added.\n", "\(dry.1)")
        let removal = try Shell.status("\(Paths.cli) uninstall -q --sysroot \(bed.sysroot) fixture-vardir", environment: env)
        #expect(removal.0 == 0)
        #expect(removal.1.hasPrefix("Removed:\n  fixture-vardir 1.0 all\nDeployed "), "\(removal.1)")
        #expect(!removal.1.contains("Added:"), "\(removal.1)")
        #expect(removal.1.hasSuffix("Changes queued for next boot. Run \"systemctl reboot\" to start a reboot.\n"), "\(removal.1)")
        let rollback = try Shell.status("\(Paths.cli) rollback -q --sysroot \(bed.sysroot)", environment: env)
        #expect(rollback.1.hasPrefix("Added:\n  fixture-vardir 1.0 all\nMoving "), "\(rollback.1)")
        // status: State:, the Diff: line on the deployment that boots next, -b and -v.
        let text = try Shell.run("\(Paths.cli) status --sysroot \(bed.sysroot)", environment: env)
        #expect(text.hasPrefix("State: idle\nDeployments:\n→ [0] "), "\(text)")
        #expect(text.contains("                Diff: 1 added\n"), "\(text)")
        let verbose = try Shell.run("\(Paths.cli) status -v -b --sysroot \(bed.sysroot)", environment: env)
        #expect(!verbose.contains("[0]") && !verbose.contains("KernelArguments: ostree="), "\(verbose)")
    }

    @Test func etcEditMadeBeforeInstallSurvives() throws {
        let bed = try TestBed()
        let hosts = try bed.deploymentDirectory() + "/etc/hosts"
        try "127.0.0.1 localhost\n10.0.0.1 edited-by-admin\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        _ = try bed.engine().install(["fixture-conf"])
        let dir = try bed.deploymentDirectory()
        #expect(try String(contentsOfFile: dir + "/etc/hosts", encoding: .utf8).contains("edited-by-admin"))
        #expect(try String(contentsOfFile: dir + "/etc/fixture-conf.conf", encoding: .utf8).contains("setting=default"))
    }

    @Test func scriptCreatedUserSurvivesLocallyEditedPasswd() throws {
        let bed = try TestBed()
        let etc = try bed.deploymentDirectory() + "/etc"
        try Shell.run("echo 'admin:x:1000:1000:Admin:/home/admin:/bin/sh' >> \(etc)/passwd && echo 'admin:x:1000:' >> \(etc)/group")
        _ = try bed.engine().install(["fixture-user"])
        let newEtc = try bed.deploymentDirectory() + "/etc"
        let passwd = try String(contentsOfFile: newEtc + "/passwd", encoding: .utf8)
        #expect(passwd.contains("admin:x:1000"))
        #expect(passwd.contains("fixtured:x:901"))
        #expect(try String(contentsOfFile: newEtc + "/group", encoding: .utf8).contains("fixtured:x:901"))
        #expect(try String(contentsOfFile: newEtc + "/shadow", encoding: .utf8).contains("fixtured:"))
        // The commit itself carries the base accounts plus the new one, not the admin's.
        let committed = try String(contentsOfFile: try bed.deploymentDirectory() + "/usr/etc/passwd", encoding: .utf8)
        #expect(committed.contains("fixtured:") && !committed.contains("admin:"))
    }

    @Test func varDirectoryFromPostinstBecomesTmpfiles() throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-vardir"])
        let dir = try bed.deploymentDirectory()
        let conf = try String(contentsOfFile: dir + "/usr/lib/tmpfiles.d/apt-layer-autovar.conf", encoding: .utf8)
        #expect(conf.contains("d /var/lib/fixture-vardir 0755 root root - -"))
        #expect(conf.contains("d /var/lib/fixture-vardir/data"))
        #expect(!conf.contains("state.txt"))
        let tree = try Shell.run("ls -A \(dir)/var")
        #expect(tree.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || !tree.contains("fixture-vardir"))
        // systemd-tmpfiles creates it in a fresh /var.
        try Shell.run(
            "mkdir -p \(bed.root)/fakeroot && cp -a \(dir)/usr \(bed.root)/fakeroot/ && mkdir -p \(bed.root)/fakeroot/var/lib && systemd-tmpfiles --create --root=\(bed.root)/fakeroot \(bed.root)/fakeroot/usr/lib/tmpfiles.d/apt-layer-autovar.conf"
        )
        #expect(FileManager.default.fileExists(atPath: "\(bed.root)/fakeroot/var/lib/fixture-vardir/data"))
    }

    @Test func dryRunBuildsNothing() throws {
        let bed = try TestBed()
        let result = try bed.engine().install(["fixture-app"], flags: .init(dryRun: true))
        #expect(result.diff?.added.map(\.name) == ["fixture-app", "fixture-lib"])
        #expect(try bed.status.deployments.count == 1)
        #expect(bed.leftovers.isEmpty)
    }
}

/// Finding 17 of issue 7: a sysroot that is not booted keeps the default, its rollback and pinned
/// deployments, not every deployment ever made.
@Suite("retention on a sysroot that is not booted", .asRoot, .offPool)
struct RetentionTests {
    @Test func onlyDefaultRollbackAndPinnedStay() throws {
        let bed = try TestBed()
        _ = try bed.engine().setPinned(index: 0, true)
        for n in 1...5 { _ = try bed.engine().kernelArguments(.init(append: ["round=\(n)"])) }
        let status = try bed.status
        #expect(status.deployments.count == 3, "\(status.deployments.map(\.kernelArguments))")
        #expect(status.deployments[0].kernelArguments.hasSuffix("round=5"))
        #expect(status.deployments[1].kernelArguments.hasSuffix("round=4"))
        #expect(status.deployments[2].pinned && status.deployments[2].checksum == bed.baseChecksum)
        let directories = try FileManager.default.contentsOfDirectory(atPath: "\(bed.sysroot)/ostree/deploy/debian/deploy").filter {
            !$0.hasSuffix(".origin")
        }
        #expect(directories.count == 3, "\(directories)")
    }

    /// What a change leaves unreferenced is freed: a commit whose tree a kept commit has (the same
    /// package set built again) by deleting its commit object alone, anything else by a prune,
    /// and nothing still referenced is touched (fsck).
    @Test func droppedCommitsAreFreedAndTwinsCostOnlyTheirCommitObject() throws {
        let bed = try TestBed()
        let repo = "\(bed.sysroot)/ostree/repo"
        func objects(_ type: String) throws -> Set<String> {
            Set(try Shell.run("cd \(repo)/objects && find . -name '*.\(type)' | sort").split(separator: "\n").map(String.init))
        }
        _ = try bed.engine().install(["fixture-app"])
        let first = try bed.defaultChecksum
        let firstTree = try bed.repoHandle().commit(first).contentChecksum
        _ = try bed.engine().install(["fixture-conf"])
        let withConf = try bed.defaultChecksum
        let conf = try Shell.run("ostree ls --repo=\(repo) -C \(withConf) /usr/etc/fixture-conf.conf").split(separator: " ").filter { !$0.isEmpty }[4]
        let confObject = "\(repo)/objects/\(conf.prefix(2))/\(conf.dropFirst(2)).file"
        #expect(FileManager.default.fileExists(atPath: confObject))
        // Back to fixture-app alone: the new commit has the first one's tree (and, a second later,
        // another timestamp: within the same second it would be the very same commit); the first
        // one's deployment goes, the rollback (withConf) and the new default stay.
        // A stray commit nothing references shows whether a whole prune ran (it would go).
        let stray = try Shell.run(
            "d=$(mktemp -d) && echo stray > $d/stray && ostree commit --repo=\(repo) --orphan --tree=dir=$d -s stray && rm -rf $d"
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        let strayObject = "\(repo)/objects/\(stray.prefix(2))/\(stray.dropFirst(2)).commit"
        #expect(FileManager.default.fileExists(atPath: strayObject))
        Thread.sleep(forTimeInterval: 1.1)
        _ = try bed.engine().uninstall(["fixture-conf"])
        let again = try bed.defaultChecksum
        #expect(try bed.repoHandle().commit(again).contentChecksum == firstTree)
        #expect(again != first)
        #expect(!FileManager.default.fileExists(atPath: "\(repo)/objects/\(first.prefix(2))/\(first.dropFirst(2)).commit"))
        #expect(FileManager.default.fileExists(atPath: strayObject), "a twin's commit object should be deleted without a prune")
        // Nothing layered: withConf's tree has no twin left, so its objects are pruned.
        let trees = try objects("dirtree")
        _ = try bed.engine().uninstall([], all: true)
        #expect(!FileManager.default.fileExists(atPath: confObject))
        #expect(!FileManager.default.fileExists(atPath: strayObject))
        #expect(!FileManager.default.fileExists(atPath: "\(repo)/objects/\(withConf.prefix(2))/\(withConf.dropFirst(2)).commit"))
        #expect(try objects("dirtree").count < trees.count)
        try Shell.run("ostree fsck --repo=\(repo) -q")
        #expect(try bed.status.deployments.map(\.checksum) == [bed.baseChecksum, again])
    }
}
