import APTLayerJournal
import APTLayerModel
import Foundation
import GRDB
import TestSupport
import Testing

@testable import APTLayerDriver

/// `DriverRunning.advance` (the loop `UpdateDriver` runs) against a real SQLite journal whose
/// writes fail when a trigger says so: effects run only after the journal committed the state.
actor JournalBackedRunner: DriverRunning {
    let journal: Journal
    var snapshot: DriverSnapshot?
    var retryAt: Date?
    var facts: DriverFacts
    var performed: [DriverEffect] = []
    var failures: [String] = []
    /// What each effect answers.
    var outcome: @Sendable (DriverEffect) -> DriverEvent

    init(journal: Journal, facts: DriverFacts, outcome: @escaping @Sendable (DriverEffect) -> DriverEvent) throws {
        self.journal = journal
        self.facts = facts
        self.outcome = outcome
        snapshot = try UpdateDriver.load(journal).0
    }

    func readFacts(for state: DriverState) async -> DriverFacts { facts }
    func save(_ next: DriverSnapshot, denylisting entry: DenylistRecord?) throws { try journal.saveDriver(next.record, denylisting: entry) }
    func commit(_ next: DriverSnapshot, from current: DriverSnapshot, denylisted: DenylistRecord?) { snapshot = next }
    func perform(_ effect: DriverEffect) async -> DriverEvent {
        performed.append(effect)
        return outcome(effect)
    }
    func failed(_ what: String, _ why: String) {
        failures.append("\(what): \(why)")
        retryAt = Date().addingTimeInterval(3600)
    }
    func recovered() { retryAt = nil }
    func retryNow() { retryAt = nil }
    func set(_ facts: DriverFacts) { self.facts = facts }
}

@Suite("update driver: journal first, then act", .tags(.fast))
struct DriverJournalTests {
    /// A journal in a temporary SQLite file, and its queue for the test's own SQL.
    static func journal(starting snapshot: DriverSnapshot) throws -> (Journal, DatabaseQueue) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("driver-\(UUID().uuidString).sqlite").path
        let queue = try DatabaseQueue(path: path)
        let journal = try Journal(writer: queue)
        try journal.saveDriver(snapshot.record)
        return (journal, queue)
    }

    static func refuseWrites(_ queue: DatabaseQueue, on table: String) throws {
        try queue.write { db in
            for verb in ["INSERT", "UPDATE"] {
                try db.execute(sql: "CREATE TRIGGER refuse_\(verb)_\(table) BEFORE \(verb) ON \(table) BEGIN SELECT RAISE(ABORT, 'disk full'); END")
            }
        }
    }

    static func allowWrites(_ queue: DatabaseQueue, on table: String) throws {
        try queue.write { db in
            for verb in ["INSERT", "UPDATE"] { try db.execute(sql: "DROP TRIGGER refuse_\(verb)_\(table)") }
        }
    }

    @Test func noRebootWhileRebootingCannotBeJournaled() async throws {
        let start = World.snapshot(.finalizing(World.rollout()), slot: .held(group: "workers"))
        let (journal, queue) = try Self.journal(starting: start)
        let runner = try JournalBackedRunner(journal: journal, facts: World.facts()) { _ in .rebootRan(true) }
        try Self.refuseWrites(queue, on: "fleet_driver")
        await runner.advance(.tick)
        #expect(await runner.performed.isEmpty, "an effect ran although its state was not journaled")
        #expect(await runner.failures.count == 1)
        #expect(try journal.driver()?.state == .finalizing)
        #expect(await runner.snapshot == start)
        // Still failing: a retry does nothing either.
        await runner.retryNow()
        await runner.advance(.tick)
        #expect(await runner.performed.isEmpty)
        #expect(await runner.failures.count == 2)
        // The disk has room again: rebooting (attempt 1) is journaled, then the reboot runs.
        try Self.allowWrites(queue, on: "fleet_driver")
        await runner.retryNow()
        await runner.advance(.tick)
        #expect(await runner.performed == [.reboot])
        let row = try #require(try journal.driver())
        #expect(row.state == .rebooting && row.attempts == 1 && row.lockHeld == true)
    }

    @Test func aReleaseIsGivenUpOnlyTogetherWithItsDenylistEntry() async throws {
        let start = World.snapshot(.rebooting(World.rollout(), into: .previousDeployment), slot: .held(group: "workers"), reason: "rolled back")
        let (journal, queue) = try Self.journal(starting: start)
        let runner = try JournalBackedRunner(journal: journal, facts: World.facts(boot: "boot-2")) { _ in .slotReleased(true) }
        try Self.refuseWrites(queue, on: "fleet_denylist")
        await runner.advance(.tick)
        // The denylist write failed, so the move to failed was rolled back with it.
        #expect(try journal.driver()?.state == .rebooting)
        #expect(try journal.denylist().isEmpty)
        #expect(await runner.performed.isEmpty)
        #expect(await runner.failures.count == 1)
        try Self.allowWrites(queue, on: "fleet_denylist")
        await runner.retryNow()
        await runner.advance(.tick)
        #expect(try journal.driver()?.state == .failed)
        #expect(try journal.denylist().map(\.commit) == [World.release1.commit])
        // Then the slot is given back: journaled unknown, released, journaled free.
        #expect(await runner.performed == [.releaseSlot(group: "workers")])
        #expect(try journal.driver()?.lockHeld == false)
    }

    @Test func aSlotIsNeverForgottenWhenItsReleaseCannotBeJournaled() async throws {
        let start = World.snapshot(.healthy(World.rollout()), slot: .held(group: "workers"))
        let (journal, queue) = try Self.journal(starting: start)
        let runner = try JournalBackedRunner(journal: journal, facts: World.facts()) { _ in .slotReleased(true) }
        try Self.refuseWrites(queue, on: "fleet_driver")
        await runner.advance(.tick)
        #expect(await runner.performed.isEmpty)
        #expect(try journal.driver()?.lockHeld == true)
    }

    /// A record the driver cannot read is not taken for `idle` (which would forget a held slot or a
    /// reboot under way): the driver does nothing until it reads.
    @Test func anUnreadableRecordIsNotIdle() throws {
        let (journal, queue) = try Self.journal(starting: World.snapshot(.waiting(World.rollout()), slot: .held(group: "workers")))
        try queue.write { db in try db.execute(sql: "UPDATE fleet_driver SET state = 'rebooting', releaseId = NULL") }
        let (snapshot, shown) = UpdateDriver.load(journal)
        #expect(snapshot == nil)
        #expect(shown.reason.contains("names no release"), "\(shown.reason)")
        try queue.write { db in try db.execute(sql: "UPDATE fleet_driver SET state = 'bogus', releaseId = 'x'") }
        #expect(UpdateDriver.load(journal).0 == nil)
    }

    /// Rows written before states carried their data decode into the same states.
    @Test func oldRowsDecode() throws {
        let (journal, queue) = try Self.journal(starting: World.snapshot(.idle(last: nil)))
        try queue.write { db in
            try db.execute(
                sql: """
                    UPDATE fleet_driver SET state = 'rebooting', releaseId = '2026.12.1', "commit" = ?, previousCommit = ?, attempts = 2,
                    lockHeld = 1, lockGroup = 'workers', rolledBack = 1, reason = 'rolled back from release 2026.12.1', bootID = 'boot-1'
                    """, arguments: [World.release1.commit, World.base])
        }
        let snapshot = try #require(UpdateDriver.load(journal).0)
        #expect(snapshot.state == .rebooting(World.rollout(attempts: 2), into: .previousDeployment))
        #expect(snapshot.slot == .held(group: "workers"))
        #expect(snapshot.record == (try journal.driver()))
        try queue.write { db in try db.execute(sql: "UPDATE fleet_driver SET state = 'waiting', rolledBack = 0, lockHeld = NULL") }
        let waiting = try #require(UpdateDriver.load(journal).0)
        #expect(waiting.state == .waiting(World.rollout(attempts: 2)) && waiting.slot == .unknown(group: "workers"))
    }
}
