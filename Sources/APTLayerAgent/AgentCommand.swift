import APTLayerEngine
import APTLayerModel
import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Logging
import OSTree

/// `apt-layerd`: the per-host apt-layer agent's command line.
///
/// One program serves both names: the package installs `apt-layer` and `apt-layerd` as a symlink
/// to it (``isInvokedAsAgent``), so the code the two share is on disk and in the page cache once.
public struct AgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "apt-layerd", abstract: "The apt-layer agent: mTLS REST API, SQLite journal, systemd service.",
        version: APTLayerVersion.current)

    @Option(help: "Main configuration file.") var config = "/etc/apt-layer/agent.yaml"
    @Option(help: "Drop-in directories, merged in file-name order after the main file (repeatable).")
    var dropIn: [String] = ["/usr/lib/apt-layer/agent.d", "/etc/apt-layer/agent.d"]
    @Option(help: "Override: the sysroot.") var sysroot: String?
    @Option(name: .customLong("os"), help: "Override: the stateroot.") var osname: String?
    @Option(help: "Override: API listen address HOST:PORT.") var listen: String?
    @Option(help: "Override: metrics listen address HOST:PORT.") var metricsListen: String?
    @Option(help: "Override: state directory.") var stateDir: String?
    @Option(help: "Override: transaction timeout in seconds.") var transactionTimeout: Double?
    @Option(help: "Override: queue length.") var queueLength: Int?
    @Option(help: "Override: TLS certificate.") var tlsCert: String?
    @Option(help: "Override: TLS key.") var tlsKey: String?
    @Option(help: "Override: client CA.") var clientCa: String?
    @Flag(help: "Validate the configuration, print the effective one, and exit.") var checkConfig = false

    func effectiveConfiguration() throws -> AgentConfiguration {
        var c = try AgentConfiguration.load(files: AgentConfiguration.files(main: config, dropInDirectories: dropIn))
        if let sysroot { c.sysroot = sysroot }
        if let osname { c.os = osname }
        if let listen { c.listen = listen }
        if let metricsListen { c.metricsListen = metricsListen }
        if let stateDir { c.stateDirectory = stateDir }
        if let transactionTimeout { c.transactionTimeoutSeconds = transactionTimeout }
        if let queueLength { c.queueLength = queueLength }
        if let tlsCert { c.tls.certificate = tlsCert }
        if let tlsKey { c.tls.key = tlsKey }
        if let clientCa { c.tls.clientCA = clientCa }
        try c.validate()
        return c
    }

    public init() {}

    public func run() async throws {
        // libostree's messages reach the journal as UTF-8 in a C locale too.
        GLibText.useUTF8()
        let configuration: AgentConfiguration
        do {
            configuration = try effectiveConfiguration()
            if checkConfig {
                _ = try Agent.tlsConfiguration(configuration.tls)
                print(try configuration.yaml(), terminator: "")
                return
            }
        } catch {
            FileHandle.standardError.write(Data("apt-layerd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        LoggingSystem.bootstrap { JournaldLogHandler(label: $0) }
        let logger = Logger(label: "apt-layerd")
        do {
            try await Agent.run(configuration: configuration, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("apt-layerd: \(error)\n".utf8))
            throw ExitCode((error as? Agent.StartError)?.permanent == true ? Agent.configurationExitCode : 1)
        }
    }

    /// Whether this process was started as `apt-layerd` (by that name or a symlink of it).
    public static var isInvokedAsAgent: Bool {
        CommandLine.arguments.first?.split(separator: "/").last == "apt-layerd"
    }

    /// Runs the agent from synchronous top-level code (the `apt-layer` program's `main.swift`) as an
    /// `async` main would: on the main queue, exiting with the command's status.
    public static func runAsProgram() -> Never {
        Task {
            await main()
            Glibc.exit(0)
        }
        dispatchMain()
    }
}
