import APTLayerAgent
import APTLayerCLI
import APTLayerEngine
import APTLayerModel
import Glibc
import OSTree

// `apt-layer --version` answers before the argument parser, whose first `String(describing:)`
// makes the Swift runtime scan every protocol conformance in the program (40 % of its start-up).
if CommandLine.arguments.dropFirst() == ["--version"] {
    _ = "\(APTLayerVersion.current)\n".withCString { write(STDOUT_FILENO, $0, strlen($0)) }
    exit(0)
}

// One program, two names: started as `apt-layerd` (the package's symlink) it is the agent.
if AgentCommand.isInvokedAsAgent { AgentCommand.runAsProgram() }

// The apply-live helper (LiveHelper): a hidden entry point, run by the engine, never parsed as a verb.
if let status = LiveHelper.runIfRequested(Array(CommandLine.arguments.dropFirst())) { exit(status) }

// Blocks SIGINT/SIGTERM before any other thread exists, so every thread inherits the mask and a
// verb's `sigwait` thread takes them (Ctrl-C cancels a transaction instead of killing us).
GLibText.useUTF8()
SignalCancellation.blockInThisThreadAndChildren()
APTLayer.main()
