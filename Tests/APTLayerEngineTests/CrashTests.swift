import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerEngine

/// The crash matrix: the CLI killed with SIGKILL at every engine phase, its children killed under
/// it, and the engine killed under its children. Whatever happens, the sysroot stays loadable and
/// consistent (fsck, one boot entry per deployment, every deployment's base kept by a ref), the
/// journal calls the transaction what it was, and the next operation succeeds and leaves nothing.
@Suite("Crashes leave a consistent sysroot", .asRoot, .offPool)
struct CrashTests {
    /// Engine phases with a fault point, in order, and whether the new deployment exists by then.
    static let installPhases: [(String, Bool)] = [
        ("after-checkout", false), ("after-plan", false), ("after-install", false), ("after-commit", false),
        ("before-deploy", false), ("after-base-refs", false), ("after-new-default", true), ("after-deploy", true),
    ]

    @Test(arguments: installPhases.map(\.0))
    func installKilledAtAPhase(_ fault: String) throws {
        let deployed = try #require(Self.installPhases.first { $0.0 == fault }).1
        try killedAt(fault, verb: "install fixture-app", deployed: deployed)
    }

    /// Removing every layered package targets the base commit, which is already deployed as the
    /// rollback: a crash before the new deployment is written must still be `interrupted`, not
    /// "confirmed" because some deployment has that commit.
    @Test func uninstallAllKilledBeforeDeployIsInterrupted() throws {
        try killedAt("before-deploy", verb: "uninstall --all", deployed: false)
    }

    /// A kernel-argument change deploys the same commit again, so the journal cannot tell from the
    /// sysroot whether it landed: it says `interrupted`; the boot entries say which arguments won.
    @Test(arguments: ["after-base-refs", "after-new-default"])
    func kernelArgumentsKilledAtAPhase(_ fault: String) throws {
        let bed = try killedAt(fault, verb: "kargs --append crash=1", deployed: false)
        let entries = try Shell.run("cat \(bed.sysroot)/boot/loader/entries/*.conf | grep -c 'crash=1' || true")
        // After the next install (which carries the default's arguments), the outcome is visible.
        #expect((Int(entries.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0) == (fault == "after-new-default"))
    }

    @discardableResult
    private func killedAt(_ fault: String, verb: String, deployed: Bool) throws -> TestBed {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-lib"])
        let before = try bed.status
        var environment = TestBed.environment
        environment["APT_LAYER_TEST_FAULT"] = fault
        let (code, _) = try Shell.status("\(Paths.cli) \(verb) -q --sysroot \(bed.sysroot)", environment: environment)
        #expect(code == 128 + SIGKILL, "the CLI did not die at \(fault)")

        try Self.expectConsistent(bed)
        let after = try bed.status
        #expect(after.deployments.first?.checksum != before.deployments.first?.checksum || !deployed)
        #expect((after.deployments.first?.checksum == before.deployments.first?.checksum) != deployed)

        // The next operation succeeds, sweeps what the dead run left, and the journal names the
        // dead run's outcome.
        try Shell.run("\(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-conf", environment: TestBed.environment)
        #expect(bed.leftovers.isEmpty)
        try Self.expectConsistent(bed)
        let history = try Shell.run("\(Paths.cli) history --json --sysroot \(bed.sysroot)", environment: TestBed.environment)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(history.utf8)) as? [[String: Any]])
        let crashed = try #require(rows.dropFirst().first)
        #expect(crashed["state"] as? String == (deployed ? "succeeded" : "interrupted"), "\(crashed)")
        #expect(rows.first?["state"] as? String == "succeeded")
        #expect(try Shell.status("pgrep -f -- \(Shell.quote("[-]-root=\(bed.sysroot)/"))").0 != 0)
        return bed
    }

    /// SIGKILL while libostree moves a repository transaction's objects into place (the first
    /// rename of the first or the second transaction of a commit, placed with gdb), installing a
    /// package whose content no commit has: no commit with missing objects is left (fsck is clean
    /// at once, not only after a later prune), nothing changed, and the next operation succeeds.
    @Test(arguments: [1, 2])
    func killedWhileTheCommitMovesObjectsIntoPlace(_ transaction: Int) throws {
        let bed = try TestBed()
        _ = try bed.engine().install(["fixture-lib"])
        let before = try bed.status
        let package = "\(bed.fixtures)/unique"
        let deb = "\(bed.fixtures)/unique_1.0_all.deb"
        try Shell.run(
            """
            mkdir -p \(package)/DEBIAN \(package)/usr/share/unique
            printf 'Package: unique\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@example.org>\\nDescription: unique content\\n' > \(package)/DEBIAN/control
            for i in $(seq 40); do head -c 4096 /dev/urandom > \(package)/usr/share/unique/file$i; done
            dpkg-deb --root-owner-group --build \(package) \(deb) >/dev/null
            """)
        let skip = transaction > 1 ? "-ex 'ignore 1 \(transaction - 1)'" : ""
        let (_, output) = try Shell.status(
            """
            gdb -q -batch -nx -ex 'set breakpoint pending on' -ex 'set confirm off' -ex 'break ostree_repo_commit_transaction' \(skip) \
              -ex run -ex 'break renameat' -ex continue -ex finish -ex kill \
              --args \(Paths.cli) install -q --sysroot \(bed.sysroot) \(deb) 2>&1
            """, environment: TestBed.environment)
        #expect(output.contains("hit Breakpoint 2, ") && output.contains("renameat"), "the kill was not placed at a rename: \(output.suffix(2000))")
        try Self.expectConsistent(bed)
        #expect(try bed.status == before)
        try Shell.run("\(Paths.cli) install -q --sysroot \(bed.sysroot) \(deb)", environment: TestBed.environment)
        try Self.expectConsistent(bed)
        #expect(try bed.packageNames().contains("unique"))
    }

    /// The outer bubblewrap of the Nth dpkg call killed as soon as it is seen (issue 26, finding
    /// 4: a sandbox pid 1 orphaned in bwrap's setup handshake held apt's status pipe and the
    /// transaction hung): the run ends with a one-line error well within a minute, nothing
    /// changed, nothing of the sandbox is left, and the next operation succeeds.
    @Test(arguments: [1, 2, 3, 4])
    func killedOuterBubblewrapNeverHangsTheRun(_ nth: Int) throws {
        let bed = try TestBed()
        let before = try bed.status
        let (_, output) = try Shell.status(
            """
            start=$(date +%s)
            timeout 120 \(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-app fixture-vardir fixture-user 2>&1 & pid=$!
            seen=" "; n=0
            while kill -0 $pid 2>/dev/null; do
              for b in $(pgrep -f "^bwrap --die-with-parent.*\(bed.sysroot)/"); do
                case "$seen" in *" $b "*) continue ;; esac
                parent=$(ps -o ppid= -p $b | tr -d ' '); [ -n "$parent" ] || continue
                [ "$(ps -o comm= -p $parent)" = bwrap ] && continue
                seen="$seen$b "; n=$((n + 1))
                if [ $n -eq \(nth) ]; then args=$(ps -o args= -p $b | sed 's/.*dpkg/dpkg/'); kill -9 $b; echo "killed outer bwrap $b: $args"; fi
              done
              sleep 0.002
            done
            wait $pid; echo "exit $? after $(( $(date +%s) - start )) s"
            """, environment: TestBed.environment)
        let exit = output.split(separator: "\n").last { $0.hasPrefix("exit ") }.map(String.init) ?? ""
        let parts = exit.split(separator: " ")
        let seconds = parts.count > 3 ? Int(parts[3]) ?? 999 : 999
        #expect(seconds < 60, "\(output)")
        #expect(parts.count > 1 && parts[1] != "124", "the run hung: \(output)")
        // apt shrugs off a killed probe (`dpkg --assert-multi-arch`): then the change is whole.
        if parts.count > 1 && parts[1] == "0" {
            #expect(Set(try bed.packageNames()).isSuperset(of: ["fixture-app", "fixture-vardir", "fixture-user"]), "\(output)")
        } else {
            #expect(parts.count > 1 && parts[1] == "1", "\(output)")
            #expect(try bed.status == before)
        }
        try Self.expectConsistent(bed)
        #expect(try Shell.status("pgrep -f -- \(Shell.quote("[-]-root=\(bed.sysroot)/"))").0 != 0)
        _ = try bed.engine().install(["fixture-conf"])
        #expect(bed.leftovers.isEmpty)
    }

    /// fsck passes, libostree loads the sysroot, there is one boot entry per deployment, and every
    /// deployment's commit and base commit are in the repository.
    static func expectConsistent(_ bed: TestBed) throws {
        try Shell.run("ostree fsck --repo=\(bed.sysroot)/ostree/repo -q")
        try Shell.run("ostree admin status --sysroot=\(bed.sysroot)", environment: TestBed.environment)
        let status = try bed.status
        let entries = try FileManager.default.contentsOfDirectory(atPath: "\(bed.sysroot)/boot/loader/entries").filter { $0.hasSuffix(".conf") }
        #expect(entries.count == status.deployments.count)
        let repo = try bed.repoHandle()
        for deployment in status.deployments {
            let commit = try repo.commit(deployment.checksum)
            let base = commit.parent ?? commit.checksum
            #expect(throws: Never.self) { try repo.commit(base) }
            let refs = try repo.refs(prefix: Layout.baseRefPrefix)
            #expect(refs.contains { $0.hasSuffix(base) }, "no ref keeps base \(base.prefix(12))")
        }
    }

    /// Killing the CLI in the middle of a maintainer script kills apt, dpkg and the script with it,
    /// and the next operation finds nothing running in its build tree.
    @Test func killedCLITakesItsChildrenWithIt() throws {
        let bed = try TestBed()
        let before = try bed.status
        let (_, output) = try Shell.status(
            """
            \(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-slow >/dev/null 2>&1 & pid=$!
            for i in $(seq 1200); do pgrep -f -- \(bed.configurePattern) >/dev/null && break; sleep 0.1; done
            pgrep -f -- \(bed.configurePattern) >/dev/null || echo "never configured"
            kill -9 $pid; wait $pid
            others() { pgrep -af -- \(Shell.quote(bed.sysroot)) | grep -v 'others()'; }
            for i in $(seq 50); do others >/dev/null || break; sleep 0.1; done
            others | sed 's/^/left: /'
            true
            """, environment: TestBed.environment)
        #expect(!output.contains("never configured\n"))
        #expect(!output.contains("left: "), "\(output)")
        #expect(try bed.status == before)
        _ = try bed.engine().install(["fixture-app"])
        #expect(try bed.packageNames().contains("fixture-app"))
        #expect(bed.leftovers.isEmpty)
    }

    /// A process of a dead run that escaped its process group and the parent-death signal still
    /// holds the child guard: the next run kills it before touching the build tree.
    @Test func survivorOfADeadRunIsKilledBeforeTheNextRun() throws {
        let bed = try TestBed()
        let state = "\(bed.sysroot)/\(Layout.stateDirectory)"
        // flock(1) takes the lock and its command inherits the descriptor, as apt's children do.
        // (Started through Subprocess so that no descriptor of the test process leaks into it.)
        try Subprocess.check([
            "sh", "-c",
            "mkdir -p \(state) && (setsid flock \(state)/children.lock sleep 299.7 >/dev/null 2>&1 &); for i in $(seq 50); do pgrep -f '^sleep 299.7' && break; sleep 0.1; done",
        ])
        #expect(try Shell.status("pgrep -f '^sleep 299.7'").0 == 0)
        let progress = RecordingProgress()
        _ = try Engine(options: .init(sysroot: bed.sysroot, osname: "debian", progress: progress)).install(["fixture-app"])
        #expect(try Shell.status("pgrep -f '^sleep 299.7'").0 != 0)
        #expect(progress.phases.contains { $0.hasPrefix("Stopping ") && $0.contains("interrupted run") })
        #expect(try bed.packageNames().contains("fixture-app"))
    }

    /// Killing apt-get under a live engine: a one-line error that says so, nothing changed.
    @Test func killedAptIsReportedAndChangesNothing() throws {
        let bed = try TestBed()
        let before = try bed.status
        let (code, output) = try Shell.status(
            """
            \(Paths.cli) install -q --sysroot \(bed.sysroot) fixture-slow 2>&1 >/dev/null & pid=$!
            for i in $(seq 1200); do d=$(pgrep -f -- \(bed.configurePattern) | head -n1); [ -n "$d" ] && break; sleep 0.1; done
            # This bed's apt-get is an ancestor of its dpkg (another test's apt-get may install
            # fixture-slow at the same time: a pattern alone would kill that one too).
            q=$d
            while [ "${q:-1}" -gt 1 ]; do
              case "$(tr '\\0' ' ' < /proc/$q/cmdline)" in "apt-get -y -q install "*) kill -KILL $q; break ;; esac
              q=$(ps -o ppid= -p $q | tr -d ' ')
            done
            wait $pid
            """, environment: TestBed.environment)
        #expect(code == 1)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(output)")
        #expect(output.contains("apt-get killed by signal 9"), "\(output)")
        #expect(try bed.status == before)
        #expect(bed.leftovers.isEmpty)
        #expect(try Shell.status("pgrep -f -- \(bed.configurePattern)").0 != 0)
    }
}

/// Subprocess edges that used to hang or leak.
@Suite("Subprocess", .asRoot, .offPool)
struct SubprocessTests {
    /// A descendant that leaves the process group and keeps the output pipe open (an inner bwrap
    /// orphaned before it armed its parent-death signal) cannot keep the engine reading forever.
    @Test func orphanHoldingThePipeDoesNotHang() throws {
        defer { _ = try? Shell.status("pkill -f 'sleep 298.3'") }
        let started = ContinuousClock.now
        let result = try Subprocess.run(["sh", "-c", "(setsid sleep 298.3 &); echo started"])
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(result.succeeded)
        #expect(result.output.contains("started"))
    }

    /// A member of the program's process group orphaned while the program still runs and waits
    /// for it (a sandbox's pid 1 whose outer bwrap was killed during setup, holding apt's status
    /// pipe) is killed, so the program reads end of file and finishes; without `killOrphans` the
    /// same program waits for the orphan.
    @Test func orphanTheProgramWaitsForIsKilled() throws {
        defer { _ = try? Shell.status("pkill -f '^sleep 41.7'") }
        let fifo = try Shell.run("mktemp -u /tmp/apt-layer-orphan.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { unlink(fifo) }
        let script = "mkfifo \(fifo); (sleep 41.7 > \(fifo) &); cat \(fifo); echo finished"
        let started = ContinuousClock.now
        let result = try Subprocess.run(["sh", "-c", script], killOrphans: true)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(result.output.contains("finished"))
        #expect(result.output.contains("killed sleep"), "\(result.output)")
        #expect(try Shell.status("pgrep -f '^sleep 41.7'").0 != 0)
        // Without it the program is still waiting after three seconds.
        unlink(fifo)
        let token = CancellationToken()
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 3)
            token.cancel()
        }
        let waited = ContinuousClock.now
        #expect(throws: (any Error).self) { try Subprocess.run(["sh", "-c", script], token: token) }
        #expect(ContinuousClock.now - waited >= .seconds(3))
    }

    /// Children get exactly stdin, stdout, stderr and (during a locked run) the guard: nothing
    /// else this process has open.
    @Test func childrenInheritOnlyTheirDescriptors() throws {
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec
        defer { close(leaked) }
        #expect(leaked > 2)
        let result = try Subprocess.run(["sh", "-c", "[ -e /proc/self/fd/\(leaked) ] && echo leaked || echo closed"])
        #expect(result.output == "closed\n")
        let control = try Shell.run("[ -e /proc/self/fd/0 ] && echo open")
        #expect(control == "open\n")
    }
}

/// Records phases, for tests that check what an operation told the user.
final class RecordingProgress: ProgressSink, @unchecked Sendable {
    // @unchecked Sendable: the lock guards `recorded`; the engine calls from one thread at a time.
    private let lock = NSLock()
    private var recorded: [String] = []
    var phases: [String] { lock.withLock { recorded } }
    func phase(_ name: String) { lock.withLock { recorded.append(name) } }
    func packages(done: Int, total: Int, item: String) {}
    func message(_ text: String) {}
}
