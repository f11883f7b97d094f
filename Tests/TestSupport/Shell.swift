import Foundation

/// Runs shell commands for test fixtures (never to stand in for the engine's own work).
public enum Shell {
    public struct Failure: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var output: String
        public init(command: String, status: Int32, output: String) {
            self.command = command
            self.status = status
            self.output = output
        }
        public var description: String { "`\(command)` exited \(status): \(output)" }
    }

    /// Runs `command` with /bin/sh; returns its combined output, throws on a non-zero exit.
    @discardableResult
    public static func run(_ command: String, environment: [String: String] = [:]) throws -> String {
        let (status, output) = try status(command, environment: environment)
        guard status == 0 else { throw Failure(command: command, status: status, output: output) }
        return output
    }

    /// Runs `command`; returns exit status and combined output.
    public static func status(_ command: String, environment: [String: String] = [:]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Single-quotes a string for the shell.
    public static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// Where the checked-in fixture scripts and the built `apt-layer` binary are.
public enum Paths {
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    public static var fixtures: String { "\(packageRoot)/Tests/Fixtures" }

    /// The `apt-layer` executable next to the test bundle.
    public static var cli: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments.first { $0.contains(".xctest") } ?? CommandLine.arguments[0])
        var dir = bundle.deletingLastPathComponent()
        if dir.lastPathComponent == "MacOS" || dir.lastPathComponent.hasSuffix(".xctest") { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("apt-layer").path
    }

    /// The development build's `apt-layerd` program, beside ``cli``.
    public static var agent: String { URL(fileURLWithPath: cli).deletingLastPathComponent().appendingPathComponent("apt-layerd").path }
}
