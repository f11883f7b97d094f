import APTLayerAPI
import APTLayerJournal
import APTLayerModel
import ArgumentParser
import Foundation

/// Prints an API document as pretty, sorted JSON (the same bytes whichever path it came from).
func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

/// The journal of the sysroot a local run manages, for reading (no agent in the way).
func readJournal(_ global: GlobalOptions) throws -> Journal {
    let path = Journal.defaultPath(sysroot: global.sysrootPath)
    guard FileManager.default.fileExists(atPath: path) else { throw AgentClient.Failure(message: "no journal at \(path): nothing was done here yet") }
    return try Journal(path: path)
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Every transaction, newest first: the agent's journal, or with --sysroot/--local the sysroot's (the same file).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this state.") var state: TransactionState?
    @Option(help: "Only this operation.") var operation: HostOperation.Kind?
    @Option(help: "How many (newest first).") var limit = 20
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let (state, kind, limit) = (state, operation, limit)
        let transactions: [Components.Schemas.Transaction]
        do {
            if let endpoint = global.agentEndpoint {
                transactions = try blocking {
                    try await AgentClient.with(endpoint) { try await $0.transactions(state: state, kind: kind, limit: limit) }
                }
            } else {
                transactions = try readJournal(global).transactions(state: state, operation: kind, limit: limit).map(
                    Components.Schemas.Transaction.init)
            }
        } catch { throw fail(oneLine(error)) }
        if json { return printJSON(transactions) }
        print(HistoryPrinter.text(transactions, limit: limit), terminator: "")
    }
}

extension TransactionState: ExpressibleByArgument {}
extension HostOperation.Kind: ExpressibleByArgument {}

struct TransactionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transaction", abstract: "Inspect transactions.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One transaction, as JSON.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run() throws {
            let id = id
            do {
                if let endpoint = global.agentEndpoint {
                    printJSON(try blocking { try await AgentClient.with(endpoint) { try await $0.transaction(id) } })
                } else {
                    guard let record = try readJournal(global).transaction(id: id) else { throw AgentClient.Failure(message: "no transaction \(id)") }
                    printJSON(Components.Schemas.Transaction(record))
                }
            } catch { throw fail(oneLine(error)) }
        }
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel an agent transaction (default: the running one).")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String?
    func run() throws {
        guard let endpoint = global.agentEndpoint else {
            // No agent: a local run is cancelled from its own terminal; say which one, if any.
            let running = try? readJournal(global).transactions(state: .running, operation: nil, limit: 1).first
            if let running {
                throw fail(
                    "transaction \(running.id) runs in process \(running.pid.map(String.init) ?? "?"), not under an agent: press Ctrl-C there (or kill -INT it)"
                )
            }
            print("No transaction is running.")
            return
        }
        let id = id
        do {
            let cancelled = try blocking {
                try await AgentClient.with(endpoint) { client -> String? in
                    var target = id
                    if target == nil { target = try await client.status().transaction?.id }
                    guard let target else { return nil }
                    return try await client.cancel(target).id
                }
            }
            // rpm-ostree cancel with nothing running is not an error.
            print(cancelled.map { "Cancelling \($0)." } ?? "No transaction is running.")
        } catch { throw fail(oneLine(error)) }
    }
}
