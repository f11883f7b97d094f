import Foundation

/// One event of a transaction's stream: journaled, sent as a Server-Sent Event (`event:` is the
/// kind, `data:` this as JSON with its `kind`), and rendered by the CLI.
public enum TransactionEvent: Sendable, Equatable, Hashable {
    /// An engine phase began.
    case taskBegin(task: String)
    /// An engine phase ended.
    case taskEnd(task: String)
    /// A warning or note for the user.
    case message(text: String)
    /// dpkg progress over the packages of the build.
    case percent(percent: Int, done: Int, total: Int, item: String)
    /// The last event: the transaction's final state.
    case finished(state: TransactionState, error: String?, changed: Bool?)

    /// The event's name on the wire and in the journal.
    public enum Kind: String, Sendable, Codable, CaseIterable, Hashable {
        case taskBegin = "task-begin"
        case taskEnd = "task-end"
        case message, percent, finished
    }

    /// The event's kind.
    public var kind: Kind {
        switch self {
        case .taskBegin: .taskBegin
        case .taskEnd: .taskEnd
        case .message: .message
        case .percent: .percent
        case .finished: .finished
        }
    }

    /// Progress of `done` out of `total` packages, with the percentage computed.
    public static func progress(done: Int, total: Int, item: String) -> TransactionEvent {
        .percent(percent: total > 0 ? 100 * done / total : 0, done: done, total: total, item: item)
    }
}

extension TransactionEvent: Codable {
    enum CodingKeys: String, CodingKey { case kind, task, text, percent, done, total, item, success, state, error, changed }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        switch self {
        case .taskBegin(let task), .taskEnd(let task): try c.encode(task, forKey: .task)
        case .message(let text): try c.encode(text, forKey: .text)
        case .percent(let percent, let done, let total, let item):
            try c.encode(percent, forKey: .percent)
            try c.encode(done, forKey: .done)
            try c.encode(total, forKey: .total)
            try c.encode(item, forKey: .item)
        case .finished(let state, let error, let changed):
            try c.encode(state == .succeeded, forKey: .success)
            try c.encode(state, forKey: .state)
            try c.encodeIfPresent(error, forKey: .error)
            try c.encodeIfPresent(changed, forKey: .changed)
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(kind: try c.decode(Kind.self, forKey: .kind), container: c)
    }

    init(kind: Kind, container c: KeyedDecodingContainer<CodingKeys>) throws {
        switch kind {
        case .taskBegin: self = .taskBegin(task: try c.decode(String.self, forKey: .task))
        case .taskEnd: self = .taskEnd(task: try c.decode(String.self, forKey: .task))
        case .message: self = .message(text: try c.decode(String.self, forKey: .text))
        case .percent:
            self = .percent(
                percent: try c.decode(Int.self, forKey: .percent), done: try c.decode(Int.self, forKey: .done),
                total: try c.decode(Int.self, forKey: .total), item: try c.decode(String.self, forKey: .item))
        case .finished:
            self = .finished(
                state: try c.decode(TransactionState.self, forKey: .state), error: try c.decodeIfPresent(String.self, forKey: .error),
                changed: try c.decodeIfPresent(Bool.self, forKey: .changed))
        }
    }

    /// Decodes journaled event data; rows from before events carried their `kind` take it from the
    /// journal's `kind` column.
    public init(kind: Kind, json: String) throws {
        struct Wrapper: Decodable {
            let event: TransactionEvent
            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                let kind = try decoder.userInfo[.eventKind] as? Kind ?? c.decode(Kind.self, forKey: .kind)
                event = try TransactionEvent(kind: kind, container: c)
            }
        }
        let decoder = JSONDecoder()
        decoder.userInfo[.eventKind] = kind
        self = try decoder.decode(Wrapper.self, from: Data(json.utf8)).event
    }

    /// Compact sorted-key JSON, including `kind`.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

extension CodingUserInfoKey {
    fileprivate static let eventKind = CodingUserInfoKey(rawValue: "apt-layer.event-kind")!
}
