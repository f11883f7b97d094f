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

        // The command runs (its async `run`, not the help a synchronous entry would print): through
        // the symlink and as the development build's own `apt-layerd` program alike.
        let pki = RouterBed.pki
        try """
        listen: "127.0.0.1:1"
        tls: { certificate: \(pki)/server.crt, key: \(pki)/server.key, client-ca: \(pki)/ca.crt }
        sysroot: \(directory)
        state-directory: \(directory)/state
        """.write(toFile: "\(directory)/agent.yaml", atomically: true, encoding: .utf8)
        for program in ["\(directory)/apt-layerd", Paths.agent] {
            let (checked, effective) = try Shell.status("\(program) --check-config --config \(directory)/agent.yaml --drop-in \(directory)/none 2>&1")
            #expect(checked == 0, "\(program): \(effective)")
            #expect(
                effective.contains("listen: 127.0.0.1:1") && effective.contains("state-directory: \(directory)/state"), "\(program): \(effective)")
        }

        let (cliStatus, cliHelp) = try Shell.status("\(Paths.cli) --help")
        #expect(cliStatus == 0)
        #expect(cliHelp.contains("USAGE: apt-layer ") && !cliHelp.contains("--check-config"), "\(cliHelp)")
    }
}
