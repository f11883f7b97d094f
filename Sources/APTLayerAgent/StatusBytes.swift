import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerTransaction
import Foundation
import Glibc
import NIOCore
import Synchronization

/// `GET /v1/status` and `GET /v1/deployments` from bytes (issue 12): the status document is
/// encoded once per change of the sysroot — seen through inotify on the directories every
/// deployment change touches (``SysrootWatcher``), with the stat key of ``StatusCache`` as a
/// bounded re-check — and the per-request parts are spliced in: the agent's uptime (and the journal
/// reset it reports) and the running transaction (encoded once per change of its record, read
/// from the transaction manager's synchronous snapshot). The bytes are what the generated handler
/// encodes — both encode with sorted keys, so the order is fixed: `agent`, `deployments`, `schema`,
/// `sysroot`, `transaction` — apart from the uptime's digits.
final class StatusBytes: Sendable {
    struct Encoded {
        /// `"deployments":[…],"schema":…,"sysroot":…` — the document's members after `agent`.
        var statusMiddle: [UInt8]
        /// `{"deployments":[…]}`.
        var deployments: [UInt8]
    }

    let statusCache: StatusCache
    let engineOptions: Engine.Options
    let manager: TransactionManager
    let started: ContinuousClock.Instant
    let watcher: SysrootWatcher
    /// `{"agent":{…"uptimeSeconds":` and what follows the number, up to the comma after the agent.
    let agentHead: [UInt8]
    let agentTail: [UInt8]
    private let encoded = Mutex<Encoded?>(nil)
    private let transaction = Mutex<(record: TransactionRecord, bytes: [UInt8])?>(nil)

    init(
        statusCache: StatusCache, engineOptions: Engine.Options, manager: TransactionManager, started: ContinuousClock.Instant,
        journalReset: Journal.Reset?
    ) {
        self.statusCache = statusCache
        self.engineOptions = engineOptions
        self.manager = manager
        self.started = started
        watcher = SysrootWatcher(sysroot: statusCache.sysroot)
        // The agent object with a sentinel uptime, split around it.
        let sentinel = 987_654_321.5
        let agent = Components.Schemas.AgentInfo(
            version: APIHandler.version, uptimeSeconds: sentinel,
            journalReset: journalReset.map { .init(at: $0.at, movedTo: $0.movedTo, reason: $0.reason) })
        let text = String(decoding: (try? Self.encoder.encode(agent)) ?? Data(), as: UTF8.self)
        let parts = text.components(separatedBy: "987654321.5")
        agentHead = Array(("{\"agent\":" + (parts.first ?? "{")).utf8)
        agentTail = Array(((parts.count > 1 ? parts[1] : "}") + ",").utf8)
    }

    /// The runtime's JSON encoder as the agent configures the generated server (sorted keys, no
    /// whitespace, RFC 3339 dates).
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339Transcoder().encode(date))
        }
        return encoder
    }

    /// The encoded document, re-read when the sysroot changed.
    func current() async throws -> Encoded {
        if !watcher.changed(), let hit = encoded.withLock({ $0 }) { return hit }
        let document = try await statusCache.document(engineOptions)
        let api = Components.Schemas.StatusDocument(document)
        let encoder = Self.encoder
        var middle = Array(try encoder.encode(api))
        if middle.first == UInt8(ascii: "{") { middle.removeFirst() }
        if middle.last == UInt8(ascii: "}") { middle.removeLast() }
        let deployments = Array("{\"deployments\":".utf8) + Array(try encoder.encode(api.deployments)) + [UInt8(ascii: "}")]
        let fresh = Encoded(statusMiddle: middle, deployments: deployments)
        encoded.withLock { $0 = fresh }
        return fresh
    }

    /// The bytes of `GET /v1/status`.
    func status() async throws -> ByteBuffer {
        let document = try await current()
        let uptime = ContinuousClock.now - started
        let seconds = Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18
        let number = String(format: "%.6f", seconds)
        var running: [UInt8] = []
        if let record = manager.currentSnapshot {
            if let cached = transaction.withLock({ $0 }), cached.record == record {
                running = cached.bytes
            } else {
                running = Array(",\"transaction\":".utf8) + Array(try Self.encoder.encode(Components.Schemas.Transaction(record)))
                transaction.withLock { $0 = (record, running) }
            }
        }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(agentHead.count + number.utf8.count + agentTail.count + document.statusMiddle.count + running.count + 1)
        buffer.writeBytes(agentHead)
        buffer.writeString(number)
        buffer.writeBytes(agentTail)
        buffer.writeBytes(document.statusMiddle)
        buffer.writeBytes(running)
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// The bytes of `GET /v1/deployments`.
    func deployments() async throws -> ByteBuffer { ByteBuffer(bytes: try await current().deployments) }
}

/// Whether the sysroot's deployments may have changed since the last look: an inotify instance on
/// `boot/` (the loader link swap), `ostree/deploy/` and each stateroot's `deploy/` (new, removed,
/// re-pinned deployments), read without blocking — one `read` per request when nothing happened.
/// Every two seconds, and whenever a watch could not be set, the ``StatusCache`` stat key is
/// compared instead, so a change inotify cannot see (a sysroot replaced wholesale) is still seen.
final class SysrootWatcher: Sendable {
    let sysroot: String
    private let fd: Int32
    private struct State {
        var watched: Set<String> = []
        var complete = false
        var lastKey: [Int64] = []
        var lastFullCheck: ContinuousClock.Instant = .now
        var primed = false
    }
    private let state = Mutex(State())
    static let recheck: Duration = .seconds(2)

    init(sysroot: String) {
        self.sysroot = sysroot
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Adds watches for the directories that exist now; true when all of them are watched.
    private func watchAll(_ state: inout State) -> Bool {
        guard fd >= 0 else { return false }
        var paths = ["\(sysroot)/boot", "\(sysroot)/ostree/deploy"]
        let deploy = "\(sysroot)/ostree/deploy"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: deploy)) ?? [] { paths.append("\(deploy)/\(name)/deploy") }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)
        var all = true
        for path in paths where !state.watched.contains(path) {
            if inotify_add_watch(fd, path, mask) >= 0 { state.watched.insert(path) } else { all = false }
        }
        return all
    }

    /// True when the document must be re-read.
    func changed() -> Bool {
        state.withLock { state in
            if !state.primed {
                state.primed = true
                state.complete = watchAll(&state)
                state.lastKey = StatusCache(sysroot: sysroot).key()
                state.lastFullCheck = .now
                return true
            }
            var events = false
            if fd >= 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    events = true
                }
            }
            if events {
                // A new stateroot or a replaced directory needs its watch (again).
                state.watched.removeAll()
                state.complete = watchAll(&state)
            }
            if events || !state.complete || ContinuousClock.now - state.lastFullCheck > Self.recheck {
                let key = StatusCache(sysroot: sysroot).key()
                state.lastFullCheck = .now
                let moved = key != state.lastKey
                state.lastKey = key
                return events || moved
            }
            return false
        }
    }
}
