import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTransaction
import ArgumentParser
import Foundation
import Glibc
import Logging

/// How a transaction ended, from either path.
struct TransactionOutcome: Sendable {
    var id: String
    var state: TransactionState
    var changed: Bool?
    var summary: String?
    var error: String?
    var diff: PackageDiff?

    init(_ r: TransactionRecord) {
        id = r.id
        state = r.state
        changed = r.changed
        summary = r.summary
        error = r.error
        diff = r.diff
    }
}

/// The one way a verb changes a host: its ``HostOperation`` goes to ``GlobalOptions/service``, the
/// agent's transaction manager (through the generated client) or, with no agent, a transaction
/// manager in this process on the sysroot's journal. Either way it is journaled, its events drive the same progress display,
/// the package changes against the deployment it replaces are printed the same way, and the exit
/// code is 0 (done, or nothing to change), 77 (nothing changed, only with `--unchanged-exit-77`)
/// or 1 (failed, cancelled).
enum TransactionRunner {
    static func run(_ operation: HostOperation, _ global: GlobalOptions) throws {
        // The same validation the API applies, for every verb, before anything is journaled or sent.
        do { try operation.validate() } catch { throw fail(error.message) }
        let outcome: TransactionOutcome
        do {
            let (service, quiet, wait) = (global.service, global.quiet, global.wait)
            outcome = try blocking { try await service.run(operation, quiet: quiet, wait: wait) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(oneLine(error))
        }
        TerminalProgress.finish()
        guard outcome.state == .succeeded else { throw fail(outcome.error ?? "transaction \(outcome.id) ended \(outcome.state.rawValue)") }
        if let diff = outcome.diff, !diff.isEmpty { print(DiffPrinter.text(diff), terminator: "") }
        print(outcome.summary ?? "Done.")
        if outcome.changed == true, let hint = rebootHint(operation) { print(hint) }
        if outcome.changed == false && global.unchangedExit77 { throw ExitCode(77) }
    }

    /// rpm-ostree's line after a change that takes effect at the next boot; nil for changes that
    /// do not (pin, cleanup, dry runs and checks).
    static func rebootHint(_ operation: HostOperation) -> String? {
        switch operation {
        case .install(_, let flags), .uninstall(_, _, let flags), .overrideRemove(_, let flags), .overrideReplace(_, _, let flags),
            .overrideReset(_, _, let flags), .deploy(_, let flags), .rebase(_, _, _, let flags):
            return flags.dryRun ? nil : nextBoot(flags.lockFinalization)
        case .upgrade(let check, let flags):
            return check || flags.dryRun ? nil : nextBoot(flags.lockFinalization)
        case .rollback, .kargs: return nextBoot(false)
        default: return nil
        }
    }

    static func nextBoot(_ locked: Bool) -> String {
        locked
            ? "Changes staged with finalization locked. Run \"apt-layer finalize\" and then \"systemctl reboot\" to apply them."
            : "Changes queued for next boot. Run \"systemctl reboot\" to start a reboot."
    }

    /// Draws a transaction's events as the local engine draws its progress.
    static func render<S: AsyncSequence>(_ events: S, quiet: Bool) async throws where S.Element == TransactionEvent {
        let progress = TerminalProgress()
        for try await event in events {
            switch event {
            case .taskBegin(let task) where !quiet: progress.phase(task)
            case .percent(_, let done, let total, let item) where !quiet: progress.packages(done: done, total: total, item: item)
            case .message(let text) where !quiet: progress.message(text)
            case .finished: return
            default: break
            }
        }
    }
}
