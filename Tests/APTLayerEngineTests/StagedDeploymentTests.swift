import Foundation
import Testing

/// Staged deployments on a host libostree sees as booted (Tests/Fixtures/boot-container.sh): the
/// real stage, `finalize-staged` at "shutdown", and the next boot.
@Suite("staged deployments on a booted host")
struct StagedDeploymentTests {
    /// A locally edited /etc/passwd wins whole in libostree's /etc merge at finalize, so the account
    /// a maintainer script created for the staged deployment used to vanish. The engine keeps such
    /// accounts and adds them at the first locked operation after the reboot.
    @Test func accountsCreatedByScriptsSurviveFinalize() throws {
        let bed = try TestBed()
        let harness = "\(Paths.fixtures)/boot-container.sh"
        let bin = URL(fileURLWithPath: Paths.cli).deletingLastPathComponent().path
        let boot = "\(harness) -b \(bin) -b \(bed.fixtures) \(bed.sysroot) \(bed.fixtures)/boots --"
        let first = try Shell.status(
            boot
                + " /bin/sh -c 'echo local:x:1500:1500::/home/local:/bin/sh >> /etc/passwd && \(Paths.cli) install -q --sysroot / fixture-user && /run/harness/reboot'"
        )
        #expect(first.0 == 0, "\(first.1)")
        #expect(try Shell.run("\(harness) last \(bed.fixtures)/boots").contains("reboot"))
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

    /// Changes made before a reboot accumulate on the pending deployment, as rpm-ostree's do, and
    /// the reboot finalizes into exactly what `status` showed as pending: its commit, its packages
    /// and its kernel arguments (issue 19: the second change used to replace the first, and a
    /// `kargs` after an install made finalization fail).
    @Test(arguments: [
        ["install fixture-app", "install fixture-conf"],
        ["install fixture-conf", "kargs --append x=1"],
        ["kargs --append x=1", "install fixture-conf"],
        ["install fixture-app", "uninstall fixture-app"],
        ["install fixture-app", "kargs --append x=1", "install fixture-conf"],
        ["install fixture-conf", "install fixture-vardir", "uninstall fixture-conf"],
    ])
    func changesBeforeARebootAccumulateAndFinalize(_ verbs: [String]) throws {
        let bed = try TestBed()
        let harness = "\(Paths.fixtures)/boot-container.sh"
        let bin = URL(fileURLWithPath: Paths.cli).deletingLastPathComponent().path
        let boot = "\(harness) -b \(bin) -b \(bed.fixtures) \(bed.sysroot) \(bed.fixtures)/boots --"
        let commands = verbs.map { "\(Paths.cli) \($0) -q --sysroot /" }.joined(separator: " && ")
        let first = try Shell.status(
            boot + " /bin/sh -c '\(commands) && \(Paths.cli) status --json --sysroot / | tr -d \"\\n\" && echo && /run/harness/reboot'")
        #expect(first.0 == 0, "finalization failed after \(verbs): \(first.1)")
        let json = first.1.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        let status = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], "\(first.1)")
        let pending = try #require((status["deployments"] as? [[String: Any]])?.first, "\(json)")
        let pendingChecksum = try #require(pending["checksum"] as? String, "\(json)")

        var installed = Set<String>()
        var kargs: [String] = []
        for verb in verbs {
            let words = verb.split(separator: " ").map(String.init)
            switch words[0] {
            case "install": installed.formUnion(words.dropFirst())
            case "uninstall": installed.subtract(words.dropFirst())
            default: kargs.append(words.last!)
            }
        }
        let second = try Shell.run(boot + " /bin/sh -c 'cat /run/harness/deployment; cat /proc/cmdline; dpkg-query -W -f=\"\\${Package}\\n\"'")
        let lines = second.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains(pendingChecksum) == true, "booted \(lines.first ?? "") after \(verbs), pending was \(pendingChecksum)")
        let commandLine = lines.dropFirst().first ?? ""
        for karg in kargs { #expect(commandLine.split(separator: " ").contains(Substring(karg)), "\(verbs): \(commandLine)") }
        let packages = Set(lines.dropFirst(2))
        for name in ["fixture-app", "fixture-conf", "fixture-vardir"] {
            #expect(packages.contains(name) == installed.contains(name), "\(verbs): \(name) after the reboot; \(packages.sorted())")
        }
    }
}
