import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import APTLayerTransaction
import Foundation
import Glibc
import Logging

/// ``HostService`` in this process: reads from the engine on the sysroot and its journal; changes
/// through the same transaction manager the agent uses, on the sysroot's journal.
struct LocalHostService: HostService {
    let global: GlobalOptions

    var engine: Engine { global.host() }

    /// The sysroot's journal, for reading.
    func readJournal() throws -> Journal {
        let path = Journal.defaultPath(sysroot: global.sysrootPath)
        guard FileManager.default.fileExists(atPath: path) else {
            throw AgentClient.Failure(message: "no journal at \(path): nothing was done here yet")
        }
        return try Journal(path: path)
    }

    func status(nextBootDiff: Bool) async throws -> (status: HostStatus, diff: PackageDiff?) {
        let engine = engine
        let running = try? readJournal().transactions(state: .running, operation: nil, limit: 1).first
        let status = HostStatus(status: try engine.status(), running: running ?? nil)
        guard nextBootDiff, nextBootDiffers(status.status) else { return (status, nil) }
        return (status, try? engine.packageDiff(from: nil, to: nil).diff)
    }

    func packageDiff(from: String?, to: String?) async throws -> PackageDiffReport { try engine.packageDiff(from: from, to: to) }

    func packages(deployment index: Int?) async throws -> [Package] { try engine.packages(deployment: index) }

    func kernelArguments() async throws -> String { try engine.currentKernelArguments() }

    func transactions(state: TransactionState?, kind: HostOperation.Kind?, limit: Int) async throws -> [TransactionRecord] {
        try readJournal().transactions(state: state, operation: kind, limit: limit)
    }

    func transaction(id: String) async throws -> TransactionRecord {
        guard let record = try readJournal().transaction(id: id) else { throw AgentClient.Failure(message: "no transaction \(id)") }
        return record
    }

    /// A local run is cancelled from its own terminal: the failure says which process runs one.
    func cancel(id: String?) async throws -> String? {
        guard let running = try? readJournal().transactions(state: .running, operation: nil, limit: 1).first else { return nil }
        throw AgentClient.Failure(
            message:
                "transaction \(running.id) runs in process \(running.pid.map(String.init) ?? "?"), not under an agent: press Ctrl-C there (or kill -INT it)"
        )
    }

    func run(_ operation: HostOperation, quiet: Bool, wait: Bool) async throws -> TransactionOutcome {
        let journal = try Self.localJournal(global.sysrootPath)
        let options = global.engineOptions
        _ = try? journal.recover(defaultChecksum: { try? Engine(options: options).defaultChecksum() })
        let requester = "local:uid:\(getuid())"
        let manager = TransactionManager(
            journal: journal, engineOptions: options, timeout: .seconds(100 * 365 * 86400), queueLength: 0,
            retention: nil, logger: Logger(label: "apt-layer") { _ in SwiftLogNoOpLogHandler() })
        let (record, _) = try await manager.submit(operation, requester: requester, role: nil, wait: false)
        SignalCancellation.onSignal { Task { _ = try? await manager.cancel(id: record.id, requester: requester, mayCancelOthers: true) } }
        guard let events = try await manager.events(id: record.id) else { throw TransactionError.notFound(id: record.id) }
        try await TransactionRunner.render(events.map(\.event), quiet: quiet)
        // The manager's record, which is the truth even when the journal could not take it.
        guard let final = await manager.finished(id: record.id) else { throw TransactionError.notFound(id: record.id) }
        await manager.idle()
        return TransactionOutcome(final)
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
}
