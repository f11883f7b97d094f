import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel

/// What the command line asks of a host, answered alike by both implementations, as rpm-ostree's
/// client and daemon share one interface: ``AgentHostService`` through the agent's generated client
/// (its local socket, or mTLS), ``LocalHostService`` in this process (the engine on the sysroot, and
/// for changes a transaction manager on the sysroot's journal). Each verb asks
/// ``GlobalOptions/service`` for one and never asks which it got; both answer with the model's
/// types (the agent's documents converted in `APTLayerAPI`), so output and exit codes are the same
/// on either path, and `--json` prints the API's document made from them.
protocol HostService: Sendable {
    /// The status document with the running transaction; with `nextBootDiff`, the change the next
    /// boot makes when it boots another deployment (``nextBootDiffers(_:)``).
    func status(nextBootDiff: Bool) async throws -> (status: HostStatus, diff: PackageDiff?)
    /// `db diff` between two selectors (index, checksum prefix of a deployment, ref, commit).
    func packageDiff(from: String?, to: String?) async throws -> PackageDiffReport
    /// The packages of deployment `index` (default: the booted one, else the default).
    func packages(deployment index: Int?) async throws -> [Package]
    /// The kernel arguments of the deployment that boots next.
    func kernelArguments() async throws -> String
    /// Journaled transactions, newest first.
    func transactions(state: TransactionState?, kind: HostOperation.Kind?, limit: Int) async throws -> [TransactionRecord]
    /// One journaled transaction.
    func transaction(id: String) async throws -> TransactionRecord
    /// Cancels transaction `id` (default: the running one); the id cancelled, or nil when nothing runs.
    func cancel(id: String?) async throws -> String?
    /// Runs one change as a journaled transaction, drawing its events; how it ended.
    func run(_ operation: HostOperation, quiet: Bool, wait: Bool) async throws -> TransactionOutcome
}

/// Whether the deployment that boots next is not the booted one and has another of its stateroot
/// to compare with: rpm-ostree's `Diff:` line (against the booted one, or on a sysroot nothing
/// booted, against the rollback).
func nextBootDiffers(_ document: StatusDocument) -> Bool {
    guard let next = document.deployments.first(where: \.default), !next.booted else { return false }
    return document.deployments.filter { $0.osname == next.osname }.count > 1
}

extension GlobalOptions {
    /// The agent when one is in use (``agentEndpoint``), else this process on ``sysrootPath``.
    var service: any HostService {
        if let endpoint = agentEndpoint { return AgentHostService(endpoint: endpoint) }
        return LocalHostService(global: self)
    }
}

/// What `status` shows: the host's deployments, the transaction running on it, and the agent that
/// answered (absent on the local path).
struct HostStatus: Sendable {
    var status: StatusDocument
    var running: TransactionRecord?
    var agent: Components.Schemas.AgentInfo?

    /// The API's `apt-layer.status/v2` document, as `status --json` prints it.
    var document: Components.Schemas.StatusDocument {
        Components.Schemas.StatusDocument(status, agent: agent, transaction: running.map(Components.Schemas.Transaction.init))
    }
}

extension HostStatus {
    /// The model's view of an agent's status document.
    init(_ document: Components.Schemas.StatusDocument) throws {
        do {
            self.init(status: document.model, running: try document.transaction?.model(), agent: document.agent)
        } catch {
            throw AgentClient.Failure(message: "the agent's running transaction is not a valid operation: \(error)")
        }
    }
}
