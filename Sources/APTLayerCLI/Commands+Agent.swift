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

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Every transaction, newest first: the agent's journal, or with --sysroot/--local the sysroot's (the same file).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this state.") var state: TransactionState?
    @Option(help: "Only this operation.") var operation: HostOperation.Kind?
    @Option(help: "How many (newest first).") var limit = 20
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let (state, kind, limit) = (state, operation, limit)
        let service = global.service
        let transactions: [TransactionRecord]
        do { transactions = try blocking { try await service.transactions(state: state, kind: kind, limit: limit) } } catch {
            throw fail(oneLine(error))
        }
        if json { return printJSON(transactions.map(Components.Schemas.Transaction.init)) }
        print(HistoryPrinter.text(transactions, limit: limit), terminator: "")
    }
}

extension TransactionState: ExpressibleByArgument {}
extension HostOperation.Kind: ExpressibleByArgument {}

struct TransactionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transaction", abstract: "Inspect transactions.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One transaction, as JSON.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run() throws {
            let id = id
            let service = global.service
            do {
                printJSON(Components.Schemas.Transaction(try blocking { try await service.transaction(id: id) }))
            } catch { throw fail(oneLine(error)) }
        }
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel an agent transaction (default: the running one).")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String?
    func run() throws {
        let (service, id) = (global.service, id)
        do {
            // With no agent, a local run is cancelled from its own terminal: the service says which.
            let cancelled = try blocking { try await service.cancel(id: id) }
            // rpm-ostree cancel with nothing running is not an error.
            print(cancelled.map { "Cancelling \($0)." } ?? "No transaction is running.")
        } catch { throw fail(oneLine(error)) }
    }
}
