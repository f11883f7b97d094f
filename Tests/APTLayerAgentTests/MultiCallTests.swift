import Foundation
import TestSupport
import Testing

/// The package installs one program: `apt-layer`, and `apt-layerd` as a symlink to it.
@Suite("one program, two names", .tags(.fast))
struct MultiCallTests {
    /// Started through a symlink named `apt-layerd`, the CLI's program is the agent (its own
    /// options, its own errors); by its own name it stays the CLI.
    @Test func theCLIProgramIsTheAgentByThatName() throws {
        let directory = try Shell.run("mktemp -d /tmp/apt-layer-multicall.XXXXXX").trimmingCharacters(in: .whitespacesAndNewlines)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createSymbolicLink(atPath: "\(directory)/apt-layerd", withDestinationPath: Paths.cli)

        let (helpStatus, help) = try Shell.status("\(directory)/apt-layerd --help")
        #expect(helpStatus == 0)
        #expect(help.contains("USAGE: apt-layerd"), "\(help)")
        #expect(help.contains("--check-config"))
        let (status, output) = try Shell.status(
            "\(directory)/apt-layerd --check-config --config \(directory)/missing.yaml --drop-in \(directory)/none 2>&1")
        #expect(status == 1)
        #expect(output.hasPrefix("apt-layerd: "), "\(output)")
        #expect(output.split(separator: "\n").count == 1, "\(output)")

        let (cliStatus, cliHelp) = try Shell.status("\(Paths.cli) --help")
        #expect(cliStatus == 0)
        #expect(cliHelp.contains("USAGE: apt-layer ") && !cliHelp.contains("--check-config"), "\(cliHelp)")
    }
}
