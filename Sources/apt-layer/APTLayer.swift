import APTLayerEngine
import ArgumentParser
import Foundation

/// `apt-layer`: rpm-ostree-style package layering for Debian on OSTree.
@main
struct APTLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apt-layer",
        abstract: "Layer Debian packages on an immutable OSTree base; every change is a new deployment.",
        subcommands: [
            Status.self, Install.self, Uninstall.self, Override.self, Upgrade.self, Deploy.self, Rebase.self,
            Rollback.self, Cleanup.self, Pin.self, Unpin.self, Kargs.self, DB.self, Finalize.self, Init.self, Compose.self,
            History.self, TransactionCommand.self, Cancel.self,
        ]
    )
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

    /// The agent to use, if any.
    func agentClient() -> AgentClient? {
        if local { return nil }
        if let agent { return AgentClient(endpoint: agent, cert: cert, key: key, ca: ca, quiet: quiet) }
        let socket = AgentClient.defaultSocket
        if sysroot == nil, ProcessInfo.processInfo.environment["APT_LAYER_SYSROOT"] == nil, FileManager.default.fileExists(atPath: socket) {
            return AgentClient(endpoint: "unix:\(socket)", cert: nil, key: nil, ca: nil, quiet: quiet)
        }
        return nil
    }

    func host() -> Engine {
        let path = sysroot ?? ProcessInfo.processInfo.environment["APT_LAYER_SYSROOT"] ?? "/"
        let progress: any ProgressSink = quiet ? SilentProgress() : TerminalProgress()
        return Engine(options: .init(sysroot: path, osname: osname, waitForLock: wait, progress: progress))
    }
}

/// An operation as the agent's API names it, for running a verb through an agent.
struct RemoteCall {
    var operation: String
    var arguments: [String: Any]
}

/// Runs an engine call (or, with an agent, the same operation through the agent's API): prints a
/// one-line error and exits 1 on failure, exits 77 when nothing changed.
func execute(_ global: GlobalOptions, remote: RemoteCall? = nil, _ body: (Engine, CancellationToken) throws -> ChangeResult?) throws {
    if let remote, let client = global.agentClient() {
        throw ExitCode(client.runTransaction(operation: remote.operation, arguments: remote.arguments))
    }
    let token = CancellationToken()
    _ = SignalCancellation(token: token)
    do {
        guard let result = try body(global.host(), token) else { return }
        TerminalProgress.finish()
        if let diff = result.diff, !diff.isEmpty { print(DiffPrinter.text(diff), terminator: "") }
        print(result.summary)
        if !result.changed { throw ExitCode(77) }
    } catch let exit as ExitCode {
        throw exit
    } catch let error as EngineError {
        TerminalProgress.finish()
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode(1)
    } catch is CancellationError {
        TerminalProgress.finish()
        FileHandle.standardError.write(Data("error: cancelled\n".utf8))
        throw ExitCode(1)
    } catch {
        TerminalProgress.finish()
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}
