import APTLayerJournal
import APTLayerModel
import Foundation
import GRDB
import TestSupport
import Testing

/// The update driver's state machine: the moves `UpdateState` allows are the ones docs/fleet.md
/// draws, and the journal refuses every other one (so a bug in the driver cannot journal a state
/// it could not have reached).
@Suite("update driver state machine", .tags(.fast))
struct UpdateStateTests {
    /// The moves of the mermaid diagram in docs/fleet.md, as `from>to` raw values.
    static func drawn() throws -> Set<String> {
        let doc = try String(contentsOfFile: "\(Paths.packageRoot)/docs/fleet.md", encoding: .utf8)
        let diagram = try #require(doc.components(separatedBy: "```mermaid").dropFirst().first?.components(separatedBy: "```").first)
        var moves: Set<String> = []
        for line in diagram.split(separator: "\n") where line.contains("-->") && !line.contains("[*]") {
            let parts = line.split(separator: ":", maxSplits: 1)[0].components(separatedBy: "-->")
            let names = parts.map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-") }
            moves.insert("\(names[0])>\(names[1])")
        }
        return moves
    }

    @Test func theDocumentDrawsExactlyTheAllowedMoves() throws {
        let allowed = Set(UpdateState.transitions.map { "\($0.0.rawValue)>\($0.1.rawValue)" })
        let drawn = try Self.drawn()
        #expect(drawn == allowed, "drawn but not allowed: \(drawn.subtracting(allowed)); allowed but not drawn: \(allowed.subtracting(drawn))")
        // Every state is reachable from idle and none is a dead end.
        var reached: Set<UpdateState> = [.idle]
        var frontier: [UpdateState] = [.idle]
        while let state = frontier.popLast() {
            for next in UpdateState.allCases where state.canMove(to: next) && !reached.contains(next) {
                reached.insert(next)
                frontier.append(next)
            }
        }
        #expect(reached == Set(UpdateState.allCases))
        for state in UpdateState.allCases { #expect(UpdateState.allCases.contains { state.canMove(to: $0) }, "\(state) is a dead end") }
    }

    @Test func theJournalRefusesMovesTheMachineDoesNotAllow() throws {
        for from in UpdateState.allCases {
            for to in UpdateState.allCases where to != from {
                let journal = try Journal(writer: DatabaseQueue())
                try journal.saveDriver(DriverRecord(state: from, reason: "start", since: Date()))
                let move = DriverRecord(state: to, reason: "next", since: Date())
                if from.canMove(to: to) {
                    try journal.saveDriver(move)
                    #expect(try journal.driver()?.state == to)
                    #expect(
                        try journal.driverTransitions().first.map { "\($0.from.rawValue)>\($0.to.rawValue)" } == "\(from.rawValue)>\(to.rawValue)")
                } else {
                    #expect(throws: IllegalUpdateTransition(from: from, to: to)) { try journal.saveDriver(move) }
                    #expect(try journal.driver()?.state == from)
                }
            }
        }
    }
}
