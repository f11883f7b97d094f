import APTLayerJournal
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// Sends the outbox to the collector as OTLP/HTTP JSON logs, oldest first, in batches; removes a
/// batch only after a 2xx. 429/502/503/504 wait as `Retry-After` says, else (and on network
/// errors and other 5xx) back off exponentially with full jitter; 413 halves the batch; other 4xx
/// move the batch to the dead-letter table. Writes the heartbeat report when it is due.
actor OutboxSender {
    let journal: Journal
    let reporter: StatusReporter
    let client: HTTPClient
    let configuration: TelemetryConfiguration
    let resource: [OTLPLogs.KeyValue]
    let version: String
    let logger: Logger
    let wakeup: Wakeup
    var batchSize: Int
    var failures = 0

    init(
        journal: Journal, reporter: StatusReporter, client: HTTPClient, configuration: TelemetryConfiguration, hostID: String,
        version: String, logger: Logger, wakeup: Wakeup
    ) {
        self.journal = journal
        self.reporter = reporter
        self.client = client
        self.configuration = configuration
        self.version = version
        self.logger = logger
        self.wakeup = wakeup
        resource = [.init("service.name", "apt-layerd"), .init("service.version", version), .init("host.id", hostID)]
        batchSize = configuration.batchSize
    }

    /// What one request came to.
    enum Outcome: Equatable {
        case accepted
        case retry(after: Double?, why: String)
        case tooLarge
        case refused(status: Int, message: String)
    }

    func run() async {
        while !Task.isCancelled {
            let settings = reporter.settings(try? await journal.off { try $0.acceptedPolicy() })
            guard let url = settings.reportURL else {
                await wakeup.wait(seconds: 10)
                continue
            }
            let batch = (try? await journal.off { [batchSize] in try $0.outbox(limit: batchSize) }) ?? []
            if batch.isEmpty {
                await wakeup.wait(seconds: 30)
                continue
            }
            let outcome = await send(batch, to: url)
            await handle(outcome, batch)
        }
    }

    /// Writes the heartbeat report whenever none was written for the heartbeat interval (while
    /// the collector is away too: the outbox shows the host was alive).
    func heartbeats() async {
        while !Task.isCancelled {
            let settings = reporter.settings(try? await journal.off { try $0.acceptedPolicy() })
            var wait = 10.0
            if settings.reportURL != nil {
                let last = (try? await journal.off { try $0.lastReportAt() }) ?? nil
                let due = last.map { $0.addingTimeInterval(Double(settings.heartbeat)).timeIntervalSinceNow } ?? 0
                if due <= 0 {
                    do { try await journal.off { try $0.report(.heartbeat) } } catch {
                        logger.warning("heartbeat report not written", metadata: ["error": "\(error)"])
                    }
                    wait = Double(settings.heartbeat)
                } else {
                    wait = due
                }
            }
            try? await Task.sleep(for: .milliseconds(Int64(min(max(wait, 0.05), 60) * 1000)))
        }
    }

    func handle(_ outcome: Outcome, _ batch: [OutboxRecord]) async {
        switch outcome {
        case .accepted:
            let seqs = batch.compactMap(\.seq)
            do { try await journal.off { try $0.outboxSent(seqs) } } catch {
                logger.error("sent reports not removed from the outbox", metadata: ["error": "\(error)"])
            }
            failures = 0
            batchSize = min(configuration.batchSize, batchSize * 2)
        case .retry(let after, let why):
            failures += 1
            let backoff = min(Double(configuration.maxBackoff.seconds), pow(2, Double(min(failures - 1, 20))))
            let wait = after.map { min($0, 3600) } ?? Double.random(in: 0...backoff)
            logger.info(
                "collector not reachable; reports stay in the outbox",
                metadata: ["why": "\(why)", "retry-in-s": "\(String(format: "%.1f", wait))", "waiting": "\(batch.count)+"])
            // A new report does not shorten the wait.
            try? await Task.sleep(for: .milliseconds(Int64(max(wait, 0.05) * 1000)))
        case .tooLarge where batch.count > 1:
            batchSize = max(1, batch.count / 2)
        case .tooLarge:
            await deadLetter(batch, status: 413, message: "the collector refused a single report as too large")
        case .refused(let status, let message):
            await deadLetter(batch, status: status, message: message)
        }
    }

    func deadLetter(_ batch: [OutboxRecord], status: Int, message: String) async {
        logger.error(
            "collector refused reports; dead-lettered", metadata: ["status": "\(status)", "reports": "\(batch.count)", "message": "\(message)"])
        do { try await journal.off { try $0.deadLetter(batch, status: status, message: message) } } catch {
            logger.error("dead-lettering failed", metadata: ["error": "\(error)"])
        }
    }

    /// One request with the batch.
    func send(_ batch: [OutboxRecord], to url: String) async -> Outcome {
        let now = Date()
        let records = batch.map { row in
            let body = (try? JSONDecoder().decode(JSONValue.self, from: row.body)) ?? .string(String(decoding: row.body, as: UTF8.self))
            return OTLPLogs.Record(
                time: row.createdAt, observed: now, body: body,
                attributes: [
                    .init("event.name", "apt_layer.status"),
                    .init(key: "apt_layer.report.seq", value: .init(.int(row.seq ?? 0))),
                ])
        }
        let payload: Data
        do { payload = try OTLPLogs.request(resource: resource, scope: ("apt-layerd", version), records: records) } catch {
            return .refused(status: 0, message: "cannot encode: \(error)")
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "apt-layerd/\(version)")
        request.body = .bytes(ByteBuffer(bytes: payload))
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let status = Int(response.status.code)
            let answer = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
            switch status {
            case 200..<300:
                return .accepted
            case 429, 502, 503, 504:
                return .retry(after: RetryAfter.seconds(response.headers.first(name: "retry-after")), why: "HTTP \(status)")
            case 413:
                return .tooLarge
            case 408:
                return .retry(after: nil, why: "HTTP 408")
            case 400..<500:
                return .refused(status: status, message: answer.trimmingCharacters(in: .whitespacesAndNewlines))
            default:
                return .retry(after: RetryAfter.seconds(response.headers.first(name: "retry-after")), why: "HTTP \(status)")
            }
        } catch {
            return .retry(after: nil, why: "\(error)")
        }
    }
}
