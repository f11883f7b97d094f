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
}
