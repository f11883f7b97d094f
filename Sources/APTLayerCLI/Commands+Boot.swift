import APTLayerEngine
import APTLayerModel
import ArgumentParser
import Foundation

/// `apt-layer boot-check`: what apt-layerd does once per boot, for hosts that run without it
/// (a oneshot unit after `multi-user.target`): handles a fall-back of the boot counter, clears a
/// stale one, and with `--mark-good` marks the booted deployment good (docs/boot-counting.md).
struct BootCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot-check", abstract: "Handle the boot counter after a boot (a fall-back, a stale counter); --mark-good clears it.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .long, help: "The booted deployment is up: clear the counter that protects it.") var markGood = false

    func run() throws {
        // Local by nature (the agent does it at its own start): the agent's socket is not used.
        guard global.agent == nil else { throw fail("boot-check runs on the host itself (the agent does it at every start), not through --agent") }
        let engine = global.host()
        do {
            let check = try engine.checkBoot()
            print(Self.describe(check))
            if markGood, case .onTrial(let deployment, _) = check, try engine.markBootGood() {
                print("Marked \(deployment.prefix(12)) good: boot counter cleared.")
            }
        } catch {
            throw fail(oneLine(error))
        }
    }

    /// One line for what ``Engine/checkBoot()`` found.
    static func describe(_ check: Engine.BootCheck) -> String {
        switch check {
        case .notCounted: "Boot counting: not set up on this sysroot (no /boot/grub/grubenv) or not booted."
        case .unarmed: "Boot counter: unarmed."
        case .waiting(let d, let tries):
            "Boot counter: armed for \(d.map { String($0.prefix(12)) } ?? "the default") (\(tries) tries), waiting for the reboot."
        case .onTrial(let d, let tries): "Boot counter: this boot is \(d.prefix(12))'s trial (\(tries) tries left)."
        case .fellBack(let f):
            "Boot fell back from \(f.failedDeployment.map { String($0.prefix(12)) } ?? "the default") to \(f.bootedDeployment.prefix(12)); it is the default again."
        case .clearedStale(let d): "Boot counter: armed for \(d.map { String($0.prefix(12)) } ?? "a deployment") that is gone; cleared."
        }
    }
}
