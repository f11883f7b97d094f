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

    init(_ t: Components.Schemas.Transaction) {
        id = t.id
        state = t.state.model
        changed = t.changed
        summary = t.summary
        error = t.error
        diff = t.diff?.model
    }

    init(_ r: TransactionRecord) {
        id = r.id
        state = r.state
        changed = r.changed
        summary = r.summary
        error = r.error
        diff = r.diff
    }
}

/// The one way a verb changes a host: its ``HostOperation`` goes to the agent's transaction manager
/// (through the generated client) or, with no agent, to a transaction manager in this process on
/// the sysroot's journal. Either way it is journaled, its events drive the same progress display,
/// the package changes against the deployment it replaces are printed the same way, and the exit
/// code is 0 (done, or nothing to change), 77 (nothing changed, only with `--unchanged-exit-77`)
/// or 1 (failed, cancelled).
enum TransactionRunner {
    static func run(_ operation: HostOperation, _ global: GlobalOptions) throws {
        // The same validation the API applies, for every verb, before anything is journaled or sent.
        do { try operation.validate() } catch { throw fail(error.message) }
        let outcome: TransactionOutcome
        do {
            outcome = try blocking {
                if let endpoint = global.agentEndpoint {
                    try await remote(operation, endpoint, global)
                } else {
                    try await local(operation, global)
                }
            }
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
        case .install(_, let flags), .uninstall(_, _, let flags), .overrideRemove(_, let flags), .overrideReset(_, _, let flags),
            .deploy(_, let flags), .rebase(_, _, _, let flags):
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

    /// Through the agent: start, stream events (Ctrl-C asks the agent to cancel), read the result.
    static func remote(_ operation: HostOperation, _ endpoint: AgentClient.Endpoint, _ global: GlobalOptions) async throws -> TransactionOutcome {
        try await AgentClient.with(endpoint) { client in
            let operation = try await client.uploadingHostFiles(operation, quiet: global.quiet)
            let (transaction, joined) = try await client.start(operation, wait: global.wait)
            let id = transaction.id
            if joined && !global.quiet { FileHandle.standardError.write(Data("Joined running transaction \(id)\n".utf8)) }
            SignalCancellation.onSignal {
                FileHandle.standardError.write(Data("Cancelling \(id)...\n".utf8))
                Task { _ = try? await client.cancel(id) }
            }
            do {
                try await render(try await client.events(id), quiet: global.quiet)
                return TransactionOutcome(try await client.transaction(id))
            } catch let failure as AgentClient.Failure {
                // The agent went away while the transaction ran (a restart): it may have finished.
                throw AgentClient.Failure(
                    message: "lost the agent while following transaction \(id) (\(failure.message)); "
                        + "it may have finished: see apt-layer transaction show \(id)")
            }
        }
    }

    /// The journal of a local run, refusing before it creates anything on a tree that is not an
    /// OSTree sysroot (or a `/` that is not OSTree-booted).
    static func localJournal(_ sysroot: String) throws -> Journal {
        if sysroot == "/" && !FileManager.default.fileExists(atPath: "/run/ostree-booted") {
            throw EngineError(.refused, "/ is not an OSTree-booted system; refusing to touch its deployments (use --sysroot DIR)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "\(sysroot)/ostree/repo", isDirectory: &isDirectory), isDirectory.boolValue else {
            throw EngineError(.invalidArgument, "\(sysroot) is not an OSTree sysroot (no ostree/repo); run apt-layer init first")
        }
        // An unreadable journal is moved aside and started anew, as the agent does (issue 26: a
        // garbage journal let the agent start but refused every local run).
        do { return try Journal.openOrReset(Journal.defaultPath(sysroot: sysroot)).0 } catch {
            throw EngineError(.system, "cannot open the journal \(Journal.defaultPath(sysroot: sysroot)): \(error)", underlying: error)
        }
    }

    /// In this process, through the same transaction manager the agent uses, on the sysroot's journal.
    static func local(_ operation: HostOperation, _ global: GlobalOptions) async throws -> TransactionOutcome {
        let journal = try localJournal(global.sysrootPath)
        let options = global.engineOptions
        _ = try? journal.recover(defaultChecksum: { try? Engine(options: options).defaultChecksum() })
        let requester = "local:uid:\(getuid())"
        let manager = TransactionManager(
            journal: journal, engineOptions: global.engineOptions, timeout: .seconds(100 * 365 * 86400), queueLength: 0,
            retention: nil, logger: Logger(label: "apt-layer") { _ in SwiftLogNoOpLogHandler() })
        let (record, _) = try await manager.submit(operation, requester: requester, role: nil, wait: false)
        SignalCancellation.onSignal { Task { _ = try? await manager.cancel(id: record.id, requester: requester, mayCancelOthers: true) } }
        guard let events = try await manager.events(id: record.id) else { throw TransactionError.notFound(id: record.id) }
        try await render(events.map(\.event), quiet: global.quiet)
        // The manager's record, which is the truth even when the journal could not take it.
        guard let final = await manager.finished(id: record.id) else { throw TransactionError.notFound(id: record.id) }
        await manager.idle()
        return TransactionOutcome(final)
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
