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

    func host() -> Engine {
        let path = sysroot ?? ProcessInfo.processInfo.environment["APT_LAYER_SYSROOT"] ?? "/"
        let progress: any ProgressSink = quiet ? SilentProgress() : TerminalProgress()
        return Engine(options: .init(sysroot: path, osname: osname, waitForLock: wait, progress: progress))
    }
}

/// Runs an engine call: prints a one-line error and exits 1 on failure, exits 77 when nothing changed.
func execute(_ global: GlobalOptions, _ body: (Engine, CancellationToken) throws -> ChangeResult?) throws {
    let token = CancellationToken()
    let signals = SignalCancellation(token: token)
    defer { signals.stop() }
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
