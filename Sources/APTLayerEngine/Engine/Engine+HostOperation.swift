import APTLayerEngine
import APTLayerModel

extension HostOperation {
    /// Runs the operation on `engine`: the one place an operation becomes an engine call. Blocking;
    /// call it off the cooperative pool (``Engine/run(_:token:)``).
    public func run(on engine: Engine, token: CancellationToken) throws -> ChangeResult {
        switch self {
        case .install(let packages, let flags): try engine.install(packages, flags: flags, token: token)
        case .uninstall(let packages, let all, let flags): try engine.uninstall(packages, all: all, flags: flags, token: token)
        case .overrideRemove(let packages, let flags): try engine.overrideRemove(packages, flags: flags, token: token)
        case .overrideReplace(let packages, let suite, let flags): try engine.overrideReplace(packages, fromRepo: suite, flags: flags, token: token)
        case .overrideReset(let packages, let all, let flags): try engine.overrideReset(packages, all: all, flags: flags, token: token)
        case .upgrade(let check, let flags): try engine.upgrade(check: check, flags: flags, token: token)
        case .deploy(let target, let flags): try engine.deploy(target, flags: flags, token: token)
        case .rebase(let ref, let target, let remoteURL, let flags):
            try engine.rebase(ref, revision: target, remoteURL: remoteURL, flags: flags, token: token)
        case .rollback: try engine.rollback()
        case .cleanup(let pending, let rollback): try engine.cleanup(pending: pending, rollback: rollback)
        case .pin(let index): try engine.setPinned(index: index, true)
        case .unpin(let index): try engine.setPinned(index: index, false)
        case .kargs(let edits): try engine.kernelArguments(edits, token: token)
        case .finalize: try engine.finalize()
        case .applyLive(let reset, let options): try engine.applyLive(reset: reset, options: options, token: token)
        }
    }
}
