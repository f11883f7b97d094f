import APTLayerEngine
import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import APTLayerTLS
import APTLayerTransaction
import AsyncHTTPClient
import Foundation
import Logging
import NIOSSL

/// The fleet update driver: polls the signed policy, and rolls this host to the policy's release
/// through the ``UpdateState`` machine — stage (finalization locked), wait for wave start, window
/// and reboot slot, finalize, reboot, verify, then keep or roll back. Every state is journaled
/// before the driver acts on it, so a kill -9 or a reboot resumes where it was; every change to
/// the host is an ordinary transaction of the agent's ``TransactionManager``.
public actor UpdateDriver {
    let configuration: FleetConfiguration
    let journal: Journal
    let transactions: TransactionManager
    let engineOptions: Engine.Options
    let logger: Logger
    let http: HTTPClient
    /// nil on an offline host (bundles only).
    let fetcher: PolicyFetcher?
    let health: HealthChecker
    /// This host's fleet identity (from the machine-id, which never leaves the host).
    public nonisolated let hostID: String
    /// The requester name the driver's transactions carry.
    public nonisolated var requester: String { "fleet:\(configuration.name)" }

    /// The journaled state the machine steps from; nil while the journal's record cannot be read
    /// (the driver then does nothing but retry reading it).
    var snapshot: DriverSnapshot?
    /// What `GET /v1/policy` shows while there is no snapshot: why the record cannot be read.
    var unreadable: DriverRecord
    /// The record `GET /v1/policy` shows: the snapshot's, or why there is none.
    var record: DriverRecord { snapshot?.record ?? unreadable }
    var policy: AcceptedPolicy?
    /// Bundles already read (path, size, modification time).
    var seenBundles: Set<String> = []
    var policyAcceptedAt: Date?
    var etag: String?
    var lastFetch: FleetStatus.LastFetch?
    var fetches = 0
    var nextPoll = Date.distantPast
    /// Set while the FleetLock server refuses a slot, for the explanation.
    var lockBusy = false
    /// Until when a failed pre-reboot hook postpones the next slot request (kept in memory: a
    /// restart asks again at once, and the hooks run again before any reboot).
    var rebootPostponedUntil: Date?
    /// Runs the policy's reboot hooks as agent.yaml allows.
    var hookRunner: RebootHookRunner {
        RebootHookRunner(allowCommands: configuration.hookCommands, timeoutCap: configuration.hookTimeoutMax?.seconds)
    }
    /// Whole windows missed while waiting, and whether the window was open at the last look.
    var windowsMissed = 0
    var windowWasOpen: Bool?
    /// Policy fetches since start, by outcome.
    var fetchOutcomes: [FleetStatus.FetchOutcome: Int] = [:]
    /// Steps not taken because the journal could not be written or a fact guarding a safety
    /// decision could not be read (`apt_layer_driver_journal_failures_total`), the last such
    /// failure, and when to try again (exponential backoff, 1 s to 60 s).
    var journalFailures = 0
    var lastFailure: String?
    var retryAt: Date?
    var backoff: Double = 0
    var wake: CheckedContinuation<Void, Never>?
    let bootID: String
    /// The booted deployment's base commit, read once: it changes only with a reboot, which
    /// restarts the agent (nil on a sysroot that is not booted).
    let bootedBase: String?

    /// Sets the driver up from the journal; throws a one-line error when the configuration cannot
    /// be used (machine-id, TLS files).
    public init(
        configuration: FleetConfiguration, journal: Journal, transactions: TransactionManager, engineOptions: Engine.Options, logger: Logger,
        userAgent: String = "apt-layer"
    ) throws {
        self.configuration = configuration
        self.journal = journal
        self.transactions = transactions
        self.engineOptions = engineOptions
        self.logger = logger
        hostID = try HostIdentity.hostID(machineIDFile: configuration.machineIDFile)
        bootID = (try? String(contentsOfFile: configuration.bootIDFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        bootedBase = try? Engine(options: engineOptions).baseCommits().booted
        let tls: TLSConfiguration
        do { tls = try configuration.tlsFiles.configuration() } catch { throw DriverFailure("fleet TLS files: \(error)") }
        var http = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(60)))
        http.redirectConfiguration = .follow(max: 5, allowCycles: false)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
        self.http = client
        fetcher = configuration.policyURL.map {
            PolicyFetcher(client: client, policyURL: $0, signatureURL: configuration.resolvedSignatureURL ?? $0 + ".sig", userAgent: userAgent)
        }
        health = HealthChecker(client: self.http)
        (snapshot, unreadable) = Self.load(journal)
        if let stored = try? journal.acceptedPolicy(), let decoded = try? FleetPolicy.decode(stored.bytes) {
            policy = AcceptedPolicy(
                policy: decoded, bytes: stored.bytes, signature: stored.signature, signers: stored.signers.split(separator: ",").map(String.init))
            policyAcceptedAt = stored.acceptedAt
            etag = stored.etag
        }
    }

    /// Runs until the task is cancelled.
    public func run() async {
        logger.info("fleet driver started", metadata: ["state": "\(record.state.rawValue)", "host-id": "\(hostID)"])
        while !Task.isCancelled {
            if snapshot == nil { reload() } else { await tick() }
            let delay = max(0.05, nextWakeup().timeIntervalSinceNow)
            await sleep(seconds: delay)
        }
        try? await http.shutdown()
    }

    /// Reads the journal's record; an unreadable one leaves the driver idle-but-blocked, never
    /// `idle` (which would forget a held slot or a reboot under way).
    static func load(_ journal: Journal) -> (DriverSnapshot?, DriverRecord) {
        do {
            let stored = try journal.driver() ?? DriverRecord(state: .idle, reason: "no policy fetched yet", since: Date())
            return (try DriverSnapshot(stored), stored)
        } catch {
            return (nil, DriverRecord(state: .idle, reason: "the driver's journal record cannot be read: \(error)", since: Date()))
        }
    }

    /// Tries the journal's record again after it could not be read.
    func reload() {
        let (loaded, shown) = Self.load(journal)
        unreadable = shown
        if let loaded {
            snapshot = loaded
            recovered()
        } else {
            failed("driver record not read", shown.reason)
        }
    }

    /// Polls now (the API's refresh, and tests).
    public func pollNow() {
        nextPoll = .distantPast
        wake?.resume()
        wake = nil
    }

    private func sleep(seconds: Double) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                wake = continuation
                Task { [weak self] in
                    try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                    await self?.wakeUp()
                }
            }
        } onCancel: {
            Task { await self.wakeUp() }
        }
    }

    private func wakeUp() {
        wake?.resume()
        wake = nil
    }

    /// One round: fetch when due, then move the state machine as far as it goes now.
    func tick() async {
        if Date() >= nextPoll {
            await poll()
            let jitter = configuration.jitterSeconds > 0 ? Double.random(in: 0...Double(configuration.jitterSeconds)) : 0
            nextPoll = Date().addingTimeInterval(Double(configuration.pollInterval.seconds) + jitter)
        } else {
            await advance(.tick)
        }
    }

    /// When the next tick is due: the next poll, or sooner while waiting for a start time, a
    /// window or a slot.
    func nextWakeup() -> Date {
        var next = nextPoll
        if let retryAt { return min(next, retryAt) }
        if record.state == .waiting, let explanation = explain() {
            // Ask again for a slot at about the poll interval, at most every minute, jittered.
            let retry = Double(min(configuration.pollInterval.seconds, 60))
            if lockBusy { next = min(next, Date().addingTimeInterval(retry * Double.random(in: 0.5...1.5))) }
            if explanation.waitingFor == .notEligibleYet, let at = explanation.eligibleAt { next = min(next, at) }
            if let window = nextLocalAndPolicyWindow(after: Date()), window > Date() { next = min(next, window) }
            if let until = rebootPostponedUntil, until > Date() { next = min(next, until) }
            // A window closing matters only while a slot is held.
            if record.lockHeld != false { next = min(next, Date().addingTimeInterval(1)) }
        }
        if [.updateAvailable, .staging, .staged, .finalizing, .rebooting, .verifying, .rollingBack].contains(record.state) {
            next = min(next, Date().addingTimeInterval(record.state == .rebooting ? 5 : 0))
        }
        // A slot still to be given back in a steady state: at about the poll interval, at most a minute.
        if snapshot?.state.isSteady == true, record.lockHeld != false {
            next = min(next, Date().addingTimeInterval(Double(min(configuration.pollInterval.seconds, 60))))
        }
        return next
    }

    /// A step not taken: logged, counted, and retried after a growing pause; reads go on.
    func failed(_ what: String, _ why: String) {
        journalFailures += 1
        lastFailure = "\(what): \(why)"
        backoff = min(60, max(1, backoff * 2))
        retryAt = Date().addingTimeInterval(backoff)
        logger.error("fleet driver: \(what); nothing done, retrying in \(Int(backoff)) s", metadata: ["error": "\(why)"])
    }

    /// A step taken after failures: the backoff ends.
    func recovered() {
        guard retryAt != nil || backoff > 0 else { return }
        retryAt = nil
        backoff = 0
        lastFailure = nil
    }

    /// The explanation under the policy in force, for the host's current base commit.
    func explain(now: Date = Date(), denylisted known: Bool? = nil) -> PolicyExplanation? {
        guard let policy = policy?.policy else { return nil }
        let release = policy.streams[configuration.stream]?.release
        let denylisted = known ?? release.map { (try? isDenylisted($0)) ?? false } ?? false
        let explanation = policy.explain(
            stream: configuration.stream, hostID: hostID, at: now, current: currentBase(), denylisted: denylisted)
        return explanation.narrowed(by: configuration.windows ?? [], at: now, lockBusy: lockBusy && record.state == .waiting)
    }

    func nextLocalAndPolicyWindow(after date: Date) -> Date? {
        let windows = policy?.policy.windows ?? []
        let local = configuration.windows ?? []
        // Both must be open: step through openings of either until both are open (bounded).
        var t = date
        for _ in 0..<64 {
            if windows.isOpen(at: t) && local.isOpen(at: t) { return t }
            let candidates = [windows.nextOpening(after: t), local.nextOpening(after: t)].compactMap { $0 }.filter { $0 > t }
            guard let next = candidates.min() else { return nil }
            t = next
        }
        return nil
    }

    /// Whether `release` is denylisted here; throws when the denylist cannot be read.
    func isDenylisted(_ release: FleetPolicy.Release) throws -> Bool {
        guard let entry = try journal.denylisted(releaseId: release.id, commit: release.commit) else { return false }
        return (release.retryEpoch ?? 0) <= entry.retryEpoch
    }

    /// The base commit of the booted deployment (of the default one on a sysroot nothing booted).
    func currentBase() -> String? {
        bootedBase ?? (try? Engine(options: engineOptions).baseCommits().default) ?? nil
    }

    /// The status `GET /v1/policy` shows.
    public func status() -> FleetStatus {
        FleetStatus(
            fleet: configuration.name, stream: configuration.stream, hostID: hostID, policy: policy, acceptedAt: policyAcceptedAt,
            lastFetch: lastFetch, rejections: (try? journal.rejections()) ?? [], explanation: explain(), driver: record,
            denylist: (try? journal.denylist()) ?? [], windowsMissed: windowsMissed, fetchOutcomes: fetchOutcomes,
            journalFailures: journalFailures, lastFailure: lastFailure)
    }
}
