import APTLayerEngine
import APTLayerModel
import ArgumentParser
import Foundation

/// `apt-layer`: rpm-ostree-style package layering for Debian on OSTree.
public struct APTLayer: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "apt-layer",
        abstract: "Layer Debian packages on an immutable OSTree base; every change is a new deployment.",
        version: APTLayerVersion.current,
        subcommands: [
            Status.self, Install.self, Uninstall.self, Override.self, Upgrade.self, Deploy.self, Rebase.self,
            Rollback.self, Cleanup.self, Pin.self, Unpin.self, Kargs.self, DB.self, Finalize.self, ApplyLive.self, BootCheck.self, Init.self,
            Compose.self,
            History.self, TransactionCommand.self, Cancel.self, Policy.self, Fleet.self, Bundle.self,
        ]
    )

    public init() {}
}

/// Options every verb takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The sysroot to manage (default: $APT_LAYER_SYSROOT or /).")
    var sysroot: String?

    @Option(name: .customLong("os"), help: "The stateroot (default: the booted one, else the only one).")
    var osname: String?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    @Flag(name: .long, help: "Wait for another running operation instead of failing with \"busy\".")
    var wait = false

    @Option(
        name: .long, help: "Talk to an agent: https://HOST:PORT or unix:PATH (default: the local socket when it exists and no --sysroot is given).")
    var agent: String?

    @Option(name: .long, help: "Client certificate for --agent https://...") var cert: String?
    @Option(name: .long, help: "Client key for --agent https://...") var key: String?
    @Option(name: .long, help: "CA that signed the agent's certificate.") var ca: String?

    @Flag(name: .long, help: "Run the engine directly even when an agent is reachable.")
    var local = false

    @Flag(
        name: .customLong("unchanged-exit-77"),
        help: "Exit 77 instead of 0 when a verb that changes the host had nothing to change (rpm-ostree's flag).")
    var unchangedExit77 = false

    /// The sysroot a local run manages.
    var sysrootPath: String { sysroot ?? ProcessInfo.processInfo.environment["APT_LAYER_SYSROOT"] ?? "/" }

    /// The agent to use, if any: `--agent`, else the local socket when it exists and no sysroot was
    /// named; never with `--local`.
    var agentEndpoint: AgentClient.Endpoint? {
        if local { return nil }
        if let agent { return .init(address: agent, cert: cert, key: key, ca: ca) }
        let socket = AgentClient.defaultSocket
        if sysroot == nil, ProcessInfo.processInfo.environment["APT_LAYER_SYSROOT"] == nil, FileManager.default.fileExists(atPath: socket) {
            return .init(address: "unix:\(socket)")
        }
        return nil
    }

    /// The engine options of a local run.
    var engineOptions: Engine.Options {
        .init(sysroot: sysrootPath, osname: osname, waitForLock: wait, progress: quiet ? SilentProgress() : TerminalProgress())
    }

    func host() -> Engine { Engine(options: engineOptions) }
}

/// Prints one line on stderr and exits 1.
func fail(_ message: String) -> ExitCode {
    TerminalProgress.finish()
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    return ExitCode(1)
}

/// The one-line form of an error.
func oneLine(_ error: any Error) -> String {
    if let engine = error as? EngineError { return engine.message }
    if error is CancellationError { return "cancelled" }
    return "\(error)"
}

/// Runs a read-only or set-up engine call that is not a transaction (status, db, init, compose):
/// prints a one-line error and exits 1 on failure.
func direct(_ global: GlobalOptions, _ body: (Engine) throws -> Void) throws {
    do { try body(global.host()) } catch let exit as ExitCode { throw exit } catch { throw fail(oneLine(error)) }
}
