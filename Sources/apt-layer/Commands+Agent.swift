import APTLayerEngine
import ArgumentParser
import Foundation

extension AgentClient {
    /// The agent's status document (its deployments; the transaction is shown by `history`).
    func status() throws -> StatusDocument {
        var json = try get("/v1/status")
        json["transaction"] = (json["transaction"] as? [String: Any])?["id"]
        json["agent"] = nil
        let data = try JSONSerialization.data(withJSONObject: json)
        return try JSONDecoder().decode(StatusDocument.self, from: data)
    }
}

/// Requires an agent for verbs that only exist there.
func requireAgent(_ global: GlobalOptions) throws -> AgentClient {
    guard let client = global.agentClient() else {
        FileHandle.standardError.write(Data("error: no agent: start apt-layerd or pass --agent\n".utf8))
        throw ExitCode(1)
    }
    return client
}

func printJSON(_ object: Any) {
    if let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

func reportFailure(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    return ExitCode(1)
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The agent's transaction journal, newest first.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only this state.") var state: String?
    @Option(help: "Only this operation.") var operation: String?
    @Option(help: "How many.") var limit = 20
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let client = try requireAgent(global)
        var query = "limit=\(limit)"
        if let state { query += "&state=\(state)" }
        if let operation { query += "&operation=\(operation)" }
        do {
            let page = try client.get("/v1/transactions?\(query)")
            let transactions = page["transactions"] as? [[String: Any]] ?? []
            if json { return printJSON(page) }
            for t in transactions {
                let fields = [t["createdAt"], t["state"], t["operation"], t["requester"], t["id"]].map { ($0 as? String) ?? "-" }
                print(fields.joined(separator: "  ") + ((t["error"] as? String).map { "  (\($0))" } ?? ""))
            }
        } catch { throw reportFailure(error) }
    }
}

struct TransactionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transaction", abstract: "Inspect agent transactions.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One transaction, as JSON.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run() throws {
            let client = try requireAgent(global)
            do { printJSON(try client.get("/v1/transactions/\(id)")) } catch { throw reportFailure(error) }
        }
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel an agent transaction (default: the running one).")
    @OptionGroup var global: GlobalOptions
    @Argument var id: String?
    func run() throws {
        let client = try requireAgent(global)
        do {
            guard let target = try id ?? (client.get("/v1/status")["transaction"] as? [String: Any])?["id"] as? String else {
                FileHandle.standardError.write(Data("error: no transaction is running\n".utf8))
                throw ExitCode(1)
            }
            let reply = try client.request("DELETE", "/v1/transactions/\(target)")
            guard reply.status == 202 else { throw AgentClient.Failure(message: reply.problem) }
            print("Cancelling \(target).")
        } catch let exit as ExitCode {
            throw exit
        } catch { throw reportFailure(error) }
    }
}
