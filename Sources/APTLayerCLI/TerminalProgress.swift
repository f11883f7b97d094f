import APTLayerEngine
import APTLayerModel
import Foundation
import Glibc
import Synchronization

/// Progress on stderr: a bar on a terminal, plain lines otherwise.
struct TerminalProgress: ProgressSink {
    static let isTerminal = isatty(2) != 0
    private static let barShown = Mutex(false)

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

    func phase(_ name: String) {
        Self.finish()
        write("\(name)...\n")
    }

    func packages(done: Int, total: Int, item: String) {
        if Self.isTerminal {
            let width = 30
            let filled = total > 0 ? width * done / total : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            write("\r\u{1B}[K[\(bar)] \(done)/\(total) \(item)")
            Self.barShown.withLock { $0 = true }
        } else {
            write("  [\(done)/\(total)] \(item)\n")
        }
    }

    func message(_ text: String) {
        Self.finish()
        write("\(text)\n")
    }

    /// Ends a bar line, if one is showing.
    static func finish() {
        let shown = barShown.withLock { value -> Bool in
            defer { value = false }
            return value
        }
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
