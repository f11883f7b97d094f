import APTLayerEngine
import APTLayerModel
import CSystemd
import Foundation
import Logging

/// sd_notify and journald, through libsystemd. Without `NOTIFY_SOCKET` the calls do nothing.
public enum Systemd {
    /// Sends a notification (`READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1`).
    public static func notify(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// The watchdog interval systemd asked for, if any.
    public static var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    /// Whether stderr goes to the journal (so structured fields are worth sending).
    static var underJournal: Bool { ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil }

    /// Sends one structured journal entry.
    static func journal(message: String, priority: Int, fields: [String: String]) {
        var strings = ["MESSAGE=\(message)", "PRIORITY=\(priority)", "SYSLOG_IDENTIFIER=apt-layerd"]
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) { strings.append("\(key)=\(value)") }
        let duplicated = strings.map { UnsafePointer(strdup($0)) }
        defer { duplicated.forEach { free(UnsafeMutablePointer(mutating: $0)) } }
        duplicated.withUnsafeBufferPointer { _ = aptl_journal_send($0.baseAddress, Int32($0.count)) }
    }
}

/// A swift-log handler that writes to journald with `APT_LAYER_TXN=` and `APT_LAYER_OPERATION=`
/// fields taken from the log metadata (`txn`, `operation`), or to stderr outside systemd.
public struct JournaldLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let stderr: StreamLogHandler

    /// Creates a handler for `label`.
    public init(label: String) {
        self.label = label
        self.stderr = StreamLogHandler.standardError(label: label)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Control characters (newlines above all) in a message or a value written as `\n`, `\u{1b}`…:
    /// a request field cannot forge a log line.
    static func escape(_ text: String) -> String {
        guard text.containsControlCharacters else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.mapValues { .string(escape("\($0)")) }
    }

    public func log(event: LogEvent) {
        guard Systemd.underJournal else {
            var handler = stderr
            handler.logLevel = logLevel
            handler.metadata = Self.escape(metadata)
            var escaped = event
            escaped.message = "\(Self.escape("\(event.message)"))"
            escaped.metadata = event.metadata.map(Self.escape)
            handler.log(event: escaped)
            return
        }
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        var fields: [String: String] = [:]
        if let txn = all["txn"] { fields["APT_LAYER_TXN"] = "\(txn)" }
        if let op = all["operation"] { fields["APT_LAYER_OPERATION"] = "\(op)" }
        let priority: Int
        switch event.level {
        case .trace, .debug: priority = 7
        case .info: priority = 6
        case .notice: priority = 5
        case .warning: priority = 4
        case .error: priority = 3
        case .critical: priority = 2
        }
        let extra = all.filter { $0.key != "txn" && $0.key != "operation" }.map { "\($0.key)=\(Self.escape("\($0.value)"))" }.sorted()
            .joined(separator: " ")
        Systemd.journal(message: "\(Self.escape("\(event.message)"))\(extra.isEmpty ? "" : " \(extra)")", priority: priority, fields: fields)
    }
}
