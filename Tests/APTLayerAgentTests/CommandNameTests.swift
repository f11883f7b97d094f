import APTLayerAgent
import APTLayerCLI
import ArgumentParser
import Testing

/// Every command names itself. Without `commandName`, the argument parser derives the name with
/// `String(describing:)` of the command's type, once per command at every start, and each such
/// call makes the Swift runtime scan all of the program's ~12,900 protocol conformances (a
/// tenth of a local `apt-layer rollback`, measured with perf).
@Suite("commands name themselves", .tags(.fast))
struct CommandNameTests {
    static func commands(_ root: any ParsableCommand.Type) -> [any ParsableCommand.Type] {
        [root] + root.configuration.subcommands.flatMap { commands($0) }
    }

    @Test func everyCommandHasAnExplicitName() {
        let all = Self.commands(APTLayer.self) + Self.commands(AgentCommand.self)
        #expect(all.count > 40)
        for command in all {
            #expect(command.configuration.commandName != nil, "\(command) has no commandName")
        }
    }
}
