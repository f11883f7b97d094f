import APTLayerAPI
import APTLayerEngine
import APTLayerJournal
import APTLayerModel
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
        /// The engine's document these bytes encode.
        var document: StatusDocument
        /// `"deployments":[…],"schema":…,"sysroot":…` — the document's members after `agent`.
        var statusMiddle: [UInt8]
        /// `{"deployments":[…]}`.
        var deployments: [UInt8]
    }

    /// The generated handler's state (status cache, engine options, manager, start time, journal reset).
    let handler: APIHandler
    let watcher: SysrootWatcher
    /// `{"agent":{…"uptimeSeconds":` and what follows the number, up to the comma after the agent.
    let agentHead: [UInt8]
    let agentTail: [UInt8]
    private let encoded = Mutex<Encoded?>(nil)
    private let transaction = Mutex<(record: TransactionRecord, bytes: [UInt8])?>(nil)

    init(handler: APIHandler) {
        self.handler = handler
        watcher = SysrootWatcher(sysroot: handler.statusCache.sysroot)
        // The agent object with a sentinel uptime, split around it.
        let sentinel = 987_654_321.5
        let text = String(decoding: (try? Self.encoder.encode(handler.agentInfo(uptimeSeconds: sentinel))) ?? Data(), as: UTF8.self)
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

    /// The encoded document; re-encoded only when the sysroot may have changed and the document
    /// (``StatusCache``, which compares its stat key) did.
    func current() async throws -> Encoded {
        let cached = encoded.withLock { $0 }
        if let cached, !watcher.mayHaveChanged() { return cached }
        let document = try await handler.statusCache.document(handler.engineOptions)
        if let cached, cached.document == document { return cached }
        let api = Components.Schemas.StatusDocument(document)
        let encoder = Self.encoder
        var middle = Array(try encoder.encode(api))
        if middle.first == UInt8(ascii: "{") { middle.removeFirst() }
        if middle.last == UInt8(ascii: "}") { middle.removeLast() }
        let deployments = Array("{\"deployments\":".utf8) + Array(try encoder.encode(api.deployments)) + [UInt8(ascii: "}")]
        let fresh = Encoded(document: document, statusMiddle: middle, deployments: deployments)
        encoded.withLock { $0 = fresh }
        return fresh
    }

    /// The bytes of `GET /v1/status`.
    func status() async throws -> ByteBuffer {
        let document = try await current()
        let number = String(format: "%.6f", handler.uptimeSeconds)
        var running: [UInt8] = []
        if let record = handler.manager.currentSnapshot {
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
/// It also says "maybe" every two seconds, and on every look while a directory could not be
/// watched, so a change inotify cannot see (a sysroot replaced wholesale) is still found by the
/// ``StatusCache`` stat key behind it.
final class SysrootWatcher: Sendable {
    let sysroot: String
    private let fd: Int32
    private struct State {
        /// Every directory is watched.
        var complete = false
        var lastLook: ContinuousClock.Instant = .now
    }
    private let state = Mutex(State())
    static let recheck: Duration = .seconds(2)

    init(sysroot: String) {
        self.sysroot = sysroot
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        let complete = watchAll()
        state.withLock { $0.complete = complete }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Watches the directories that exist now (watching one again is harmless); true when all are.
    private func watchAll() -> Bool {
        guard fd >= 0 else { return false }
        let deploy = "\(sysroot)/ostree/deploy"
        let stateroots = ((try? FileManager.default.contentsOfDirectory(atPath: deploy)) ?? []).map { "\(deploy)/\($0)/deploy" }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)
        // `boot/grub` holds the boot counter's block (absent on sysroots that do not count boots).
        var isDirectory: ObjCBool = false
        let hasGrub = FileManager.default.fileExists(atPath: "\(sysroot)/boot/grub", isDirectory: &isDirectory) && isDirectory.boolValue
        let grub = hasGrub ? ["\(sysroot)/boot/grub"] : []
        // apply-live's state directory on a booted host, when it exists (it appears with the first
        // live apply; until it is watched, the two-second recheck and the stat key find changes).
        if sysroot == "/" { _ = inotify_add_watch(fd, (Engine.liveStatePath as NSString).deletingLastPathComponent, mask) }
        return (["\(sysroot)/boot", deploy] + grub + stateroots).allSatisfy { inotify_add_watch(fd, $0, mask) >= 0 }
    }

    /// Drains the inotify queue; true when it held events.
    private func drain() -> Bool {
        guard fd >= 0 else { return false }
        return withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 8) { buffer in
            var events = false
            while read(fd, buffer.baseAddress, buffer.count) > 0 { events = true }
            return events
        }
    }

    /// True when the document must be looked at again.
    func mayHaveChanged() -> Bool {
        state.withLock { state in
            let events = drain()
            // A new stateroot or a replaced directory needs its watch (again).
            if events || !state.complete { state.complete = watchAll() }
            guard events || !state.complete || ContinuousClock.now - state.lastLook > Self.recheck else { return false }
            state.lastLook = .now
            return true
        }
    }
}
