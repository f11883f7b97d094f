import APTLayerAPI
import APTLayerEngine

/// The generated request types, shortened.
typealias Operation = Components.Schemas.Operation
typealias Arguments = Components.Schemas.TransactionArguments

/// Validates a transaction request and turns it into one engine call.
enum OperationCall {
    typealias Call = @Sendable (Engine, CancellationToken) throws -> ChangeResult

    /// Which argument keys each operation takes.
    static let allowed: [Operation: Set<String>] = [
        .install: ["packages", "idempotent", "dryRun", "allowKernel"],
        .uninstall: ["packages", "all", "idempotent", "dryRun"],
        .overrideRemove: ["packages", "idempotent", "dryRun"],
        .overrideReset: ["packages", "all", "idempotent", "dryRun"],
        .upgrade: ["check", "dryRun", "allowKernel"],
        .deploy: ["target", "dryRun"],
        .rebase: ["ref", "dryRun"],
        .rollback: [], .finalize: [],
        .cleanup: ["pending", "rollback"],
        .pin: ["index"], .unpin: ["index"],
        .kargs: ["append", "delete", "replace"],
    ]

    static func presentKeys(_ a: Arguments) -> Set<String> {
        var keys: Set<String> = []
        if a.packages != nil { keys.insert("packages") }
        if a.all != nil { keys.insert("all") }
        if a.idempotent != nil { keys.insert("idempotent") }
        if a.dryRun != nil { keys.insert("dryRun") }
        if a.allowKernel != nil { keys.insert("allowKernel") }
        if a.check != nil { keys.insert("check") }
        if a.target != nil { keys.insert("target") }
        if a.ref != nil { keys.insert("ref") }
        if a.pending != nil { keys.insert("pending") }
        if a.rollback != nil { keys.insert("rollback") }
        if a.index != nil { keys.insert("index") }
        if a.append != nil { keys.insert("append") }
        if a.delete != nil { keys.insert("delete") }
        if a.replace != nil { keys.insert("replace") }
        return keys
    }

    /// The engine call for `operation`, or a 400 problem naming what is wrong.
    static func make(_ operation: Operation, _ a: Arguments) throws(AgentProblem) -> Call {
        let extra = presentKeys(a).subtracting(allowed[operation] ?? [])
        if let key = extra.sorted().first {
            throw .badRequest("argument \(key) does not apply to \(operation.rawValue)")
        }
        let flags = LayeringFlags(idempotent: a.idempotent ?? false, dryRun: a.dryRun ?? false, allowKernel: a.allowKernel ?? false)
        let packages = a.packages ?? []
        func needPackages() throws(AgentProblem) {
            if packages.isEmpty && a.all != true { throw .badRequest("\(operation.rawValue) needs a non-empty packages list") }
        }
        switch operation {
        case .install:
            try needPackages()
            return { try $0.install(packages, flags: flags, token: $1) }
        case .uninstall:
            try needPackages()
            return { try $0.uninstall(packages, all: a.all ?? false, flags: flags, token: $1) }
        case .overrideRemove:
            try needPackages()
            return { try $0.overrideRemove(packages, flags: flags, token: $1) }
        case .overrideReset:
            try needPackages()
            return { try $0.overrideReset(packages, all: a.all ?? false, flags: flags, token: $1) }
        case .upgrade:
            return { try $0.upgrade(check: a.check ?? false, flags: flags, token: $1) }
        case .deploy:
            guard let target = a.target, !target.isEmpty else { throw .badRequest("deploy needs a target (version or checksum)") }
            return { try $0.deploy(target, flags: flags, token: $1) }
        case .rebase:
            guard let ref = a.ref, !ref.isEmpty else { throw .badRequest("rebase needs a ref") }
            return { try $0.rebase(ref, flags: flags, token: $1) }
        case .rollback:
            return { engine, _ in try engine.rollback() }
        case .cleanup:
            return { engine, _ in try engine.cleanup(pending: a.pending ?? false, rollback: a.rollback ?? false) }
        case .pin, .unpin:
            guard let index = a.index else { throw .badRequest("\(operation.rawValue) needs an index") }
            let pinned = operation == .pin
            return { engine, _ in try engine.setPinned(index: index, pinned) }
        case .kargs:
            let edits = KernelArguments.Edits(append: a.append ?? [], delete: a.delete ?? [], replace: a.replace ?? [])
            if edits.append.isEmpty && edits.delete.isEmpty && edits.replace.isEmpty {
                throw .badRequest("kargs needs append, delete or replace")
            }
            return { try $0.kernelArguments(edits, token: $1) }
        case .finalize:
            return { engine, _ in try engine.finalize() }
        }
    }
}
