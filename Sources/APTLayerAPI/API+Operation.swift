import APTLayerEngine
import APTLayerJournal
import APTLayerModel
import Foundation

// The one place the generated API types meet the typed model. The agent (server) and the CLI
// (client) both convert here; nothing else spells the protocol by hand.

extension Components.Schemas.TransactionArguments {
    /// The API form of an operation's arguments.
    public init(_ a: HostOperation.Arguments) {
        self.init(
            packages: a.packages, all: a.all, idempotent: a.idempotent, dryRun: a.dryRun, allowKernel: a.allowKernel, check: a.check,
            target: a.target, ref: a.ref, remoteUrl: a.remoteUrl, pending: a.pending, rollback: a.rollback, index: a.index, append: a.append,
            delete: a.delete,
            replace: a.replace, lockFinalization: a.lockFinalization, refresh: a.refresh)
    }

    /// The model's form.
    public var model: HostOperation.Arguments {
        .init(
            packages: packages, all: all, idempotent: idempotent, dryRun: dryRun, allowKernel: allowKernel, lockFinalization: lockFinalization,
            refresh: refresh, check: check, target: target, ref: ref, remoteUrl: remoteUrl, pending: pending, rollback: rollback, index: index,
            append: append,
            delete: delete, replace: replace)
    }
}

extension Components.Schemas.Operation {
    /// The API name of a kind.
    public init(_ kind: HostOperation.Kind) {
        // Both enums take their raw values from openapi.yaml's `Operation` enum.
        self.init(rawValue: kind.rawValue)!
    }

    /// The model's kind.
    public var model: HostOperation.Kind { HostOperation.Kind(rawValue: rawValue)! }
}

extension Components.Schemas.TransactionState {
    /// The API form of a state.
    public init(_ state: TransactionState) { self.init(rawValue: state.rawValue)! }
    /// The model's state.
    public var model: TransactionState { TransactionState(rawValue: rawValue)! }
}

/// The flat form every operation's request schema shares: `operation`, the operation's own
/// `arguments`, `idempotencyKey`. The generated request is one case per operation (openapi.yaml's
/// `TransactionRequest`, chosen by `operation`); both directions go through this form, so the
/// model's ``HostOperation/Arguments`` never has to name the thirteen cases.
struct FlatRequest: Codable {
    var operation: HostOperation.Kind
    var arguments: HostOperation.Arguments?
    var idempotencyKey: String?
}

extension Components.Schemas.TransactionRequest {
    /// The request that starts `operation`.
    public init(_ operation: HostOperation, idempotencyKey: String? = nil) throws {
        let arguments = operation.arguments
        let flat = FlatRequest(
            operation: operation.kind, arguments: arguments == .init() && !operation.kind.takesArguments ? nil : arguments,
            idempotencyKey: idempotencyKey)
        self = try JSONDecoder().decode(Self.self, from: JSONEncoder().encode(flat))
    }

    /// The flat form of whichever operation's request this is.
    var flat: FlatRequest {
        get throws { try JSONDecoder().decode(FlatRequest.self, from: JSONEncoder().encode(self)) }
    }

    /// The caller's idempotency key.
    public var idempotencyKey: String? { (try? flat)?.idempotencyKey }
}

extension HostOperation.Kind {
    /// Whether the operation's request schema has arguments of its own (rollback and finalize have
    /// none).
    public var takesArguments: Bool { self != .rollback && self != .finalize }
}

extension HostOperation {
    /// Validates an API request into an operation (missing arguments, values the engine must never
    /// see: one line). The schema already refused unknown keys and arguments of other operations.
    public init(_ request: Components.Schemas.TransactionRequest) throws(OperationError) {
        let flat: FlatRequest
        do { flat = try request.flat } catch { throw OperationError("unreadable request: \(error)") }
        try self.init(kind: flat.operation, arguments: flat.arguments ?? .init())
    }
}

extension Components.Schemas.Transaction {
    /// The API form of a journaled transaction.
    public init(_ r: TransactionRecord) {
        self.init(
            id: r.id, operation: .init(r.operation.kind), arguments: .init(r.operation.arguments), state: .init(r.state),
            requester: r.requester, idempotencyKey: r.idempotencyKey, createdAt: r.createdAt, startedAt: r.startedAt,
            finishedAt: r.finishedAt, changed: r.changed, summary: r.summary, resultChecksum: r.resultChecksum, error: r.error,
            diff: r.diff.map(Components.Schemas.PackageDiff.init))
    }
}

extension Components.Schemas.TransactionEvent {
    /// The API form of an event.
    public init(_ event: TransactionEvent) {
        switch event {
        case .taskBegin(let task): self = .taskBegin(.init(kind: .taskBegin, task: task))
        case .taskEnd(let task): self = .taskEnd(.init(kind: .taskEnd, task: task))
        case .message(let text): self = .message(.init(kind: .message, text: text))
        case .percent(let percent, let done, let total, let item):
            self = .percent(.init(kind: .percent, percent: percent, done: done, total: total, item: item))
        case .finished(let state, let error, let changed):
            self = .finished(.init(kind: .finished, success: state == .succeeded, state: .init(state), error: error, changed: changed))
        }
    }

    /// The model's event.
    public var model: TransactionEvent {
        switch self {
        case .taskBegin(let e): .taskBegin(task: e.task)
        case .taskEnd(let e): .taskEnd(task: e.task)
        case .message(let e): .message(text: e.text)
        case .percent(let e): .percent(percent: e.percent, done: e.done, total: e.total, item: e.item)
        case .finished(let e): .finished(state: e.state.model, error: e.error, changed: e.changed)
        }
    }
}
