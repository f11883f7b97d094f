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
            replace: a.replace, fromRepo: a.fromRepo, lockFinalization: a.lockFinalization, refresh: a.refresh, applyLive: a.applyLive,
            allowReplacement: a.allowReplacement, startServices: a.startServices, reset: a.reset)
    }

    /// The model's form.
    public var model: HostOperation.Arguments {
        .init(
            packages: packages, all: all, idempotent: idempotent, dryRun: dryRun, allowKernel: allowKernel, lockFinalization: lockFinalization,
            refresh: refresh, check: check, target: target, ref: ref, remoteUrl: remoteUrl, pending: pending, rollback: rollback, index: index,
            append: append,
            delete: delete, replace: replace, fromRepo: fromRepo, applyLive: applyLive, allowReplacement: allowReplacement,
            startServices: startServices, reset: reset)
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
        // Rollback and finalize take no arguments: their schema has no `arguments` to fill.
        let arguments = HostOperation.allowedKeys(operation.kind).isEmpty ? nil : operation.arguments
        let flat = FlatRequest(operation: operation.kind, arguments: arguments, idempotencyKey: idempotencyKey)
        self = try JSONDecoder().decode(Self.self, from: JSONEncoder().encode(flat))
    }

    /// The operation, validated (missing arguments, values the engine must never see: one line;
    /// the schema already refused unknown keys and arguments of other operations), and the caller's
    /// idempotency key, from one conversion to the flat form.
    public func decoded() throws(OperationError) -> (operation: HostOperation, idempotencyKey: String?) {
        let flat: FlatRequest
        do { flat = try JSONDecoder().decode(FlatRequest.self, from: JSONEncoder().encode(self)) } catch {
            throw OperationError("unreadable request: \(error)")
        }
        return (try HostOperation(kind: flat.operation, arguments: flat.arguments ?? .init()), flat.idempotencyKey)
    }
}

extension HostOperation {
    /// Validates an API request into an operation (``Components/Schemas/TransactionRequest/decoded()``).
    public init(_ request: Components.Schemas.TransactionRequest) throws(OperationError) {
        self = try request.decoded().operation
    }
}

extension Components.Schemas.Transaction {
    /// The API form of a journaled transaction.
    public init(_ r: TransactionRecord) {
        self.init(
            id: r.id, operation: .init(r.operation.kind), arguments: .init(r.operation.arguments), state: .init(r.state),
            requester: r.requester, idempotencyKey: r.idempotencyKey, createdAt: r.createdAt, startedAt: r.startedAt,
            finishedAt: r.finishedAt, changed: r.changed, summary: r.summary, resultChecksum: r.resultChecksum, error: r.error,
            failure: r.failure.map { .init(rawValue: $0.rawValue)! }, diff: r.diff.map(Components.Schemas.PackageDiff.init))
    }

    /// The journal's form of what the API says (no owner process, boot or role: the API does not
    /// publish them); throws when the operation and its arguments do not make a valid operation.
    public func model() throws(OperationError) -> TransactionRecord {
        var r = TransactionRecord(
            id: id, operation: try HostOperation(kind: operation.model, arguments: arguments.model), state: state.model,
            requester: requester, idempotencyKey: idempotencyKey, createdAt: createdAt)
        r.startedAt = startedAt
        r.finishedAt = finishedAt
        r.changed = changed
        r.summary = summary
        r.resultChecksum = resultChecksum
        r.error = error
        r.failure = failure.flatMap { FailureKind(rawValue: $0.rawValue) }
        r.diff = diff?.model
        return r
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
