import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerDriver

/// One step of the machine: from a snapshot, an event and facts, what must come out.
struct StepRow: CustomTestStringConvertible, Sendable {
    var name: String
    var from: DriverSnapshot
    var event: DriverEvent
    var facts: DriverFacts
    /// The state journaled (nil: nothing journaled).
    var to: UpdateState?
    var effect: DriverEffect?
    var slot: SlotHold?
    var denylists = false
    var blocked = false
    var attempts: Int?

    var testDescription: String { name }
}

/// Every edge of the diagram in docs/fleet.md, and the steps that stay in a state, as a table.
@Suite("update driver machine: the table", .tags(.fast))
struct DriverMachineTableTests {
    static let r = World.rollout()
    static let other = World.release2

    static let rows: [StepRow] = [
        // Polls.
        .init(name: "idle polls", from: World.snapshot(.idle(last: nil)), event: .pollStarting, facts: World.facts(), to: .checking),
        .init(name: "up-to-date polls", from: World.snapshot(.upToDate(last: nil)), event: .pollStarting, facts: World.facts(), to: .checking),
        .init(name: "healthy polls", from: World.snapshot(.healthy(r)), event: .pollStarting, facts: World.facts(), to: .checking),
        .init(name: "failed polls", from: World.snapshot(.failed(last: r)), event: .pollStarting, facts: World.facts(), to: .checking),
        .init(name: "a poll while waiting changes nothing", from: World.snapshot(.waiting(r)), event: .pollStarting, facts: World.facts(), to: nil),
        // checking: decided when the poll has ended.
        .init(name: "checking waits for the poll's end", from: World.snapshot(.checking(last: nil)), event: .tick, facts: World.facts(), to: nil),
        .init(name: "no accepted policy", from: World.snapshot(.checking(last: nil)), event: .polled, facts: World.facts(policy: false), to: .idle),
        .init(
            name: "runs the release", from: World.snapshot(.checking(last: nil)), event: .polled, facts: World.facts(waitingFor: .upToDate),
            to: .upToDate),
        .init(
            name: "release denylisted by the explanation", from: World.snapshot(.checking(last: nil)), event: .polled,
            facts: World.facts(waitingFor: .denylisted, denylisted: true), to: .upToDate),
        .init(
            name: "another release", from: World.snapshot(.checking(last: nil)), event: .polled, facts: World.facts(waitingFor: .waveNotOpen),
            to: .updateAvailable, attempts: 0),
        .init(
            name: "the same release keeps its attempts", from: World.snapshot(.checking(last: World.rollout(attempts: 2))), event: .polled,
            facts: World.facts(), to: .updateAvailable, attempts: 2),
        .init(
            name: "a new release starts at zero attempts", from: World.snapshot(.checking(last: World.rollout(attempts: 2))), event: .polled,
            facts: World.facts(release: other), to: .updateAvailable, attempts: 0),
        .init(
            name: "a release pinned again keeps its recorded attempts", from: World.snapshot(.checking(last: World.rollout(World.release2))),
            event: .polled, facts: World.facts(releaseAttempts: 2), to: .updateAvailable, attempts: 2),
        .init(
            name: "checking: attempts unreadable", from: World.snapshot(.checking(last: nil)), event: .polled,
            facts: World.facts(releaseAttempts: nil),
            blocked: true),
        .init(
            name: "checking: denylist unreadable", from: World.snapshot(.checking(last: nil)), event: .polled, facts: World.facts(denylisted: nil),
            blocked: true),
        // update-available.
        .init(
            name: "stage", from: World.snapshot(.updateAvailable(r)), event: .tick, facts: World.facts(), to: .staging,
            effect: .stage(World.release1)),
        .init(
            name: "update-available: denylist unreadable", from: World.snapshot(.updateAvailable(r)), event: .tick,
            facts: World.facts(denylisted: nil), blocked: true),
        .init(
            name: "update-available: newer policy", from: World.snapshot(.updateAvailable(r)), event: .polled, facts: World.facts(release: other),
            to: .checking),
        // staging.
        .init(
            name: "staged", from: World.snapshot(.staging(r)), event: .staged(.success("t-1")), facts: World.facts(), to: .staged),
        .init(
            name: "staging failed", from: World.snapshot(.staging(r)), event: .staged(.failure(DriverFailure("no space"))), facts: World.facts(),
            to: .failed),
        .init(
            name: "staging resumed after a restart", from: World.snapshot(.staging(r), reason: "staging release 2026.12.1 (111111111111)"),
            event: .tick, facts: World.facts(), to: nil, effect: .stage(World.release1)),
        .init(
            name: "staging after a restart: another release", from: World.snapshot(.staging(r)), event: .tick, facts: World.facts(release: other),
            to: .checking),
        .init(
            name: "staging after a restart: now denylisted", from: World.snapshot(.staging(r)), event: .tick, facts: World.facts(denylisted: true),
            to: .checking),
        // staged.
        .init(name: "staged waits", from: World.snapshot(.staged(r)), event: .tick, facts: World.facts(), to: .waiting),
        .init(name: "staged: newer policy", from: World.snapshot(.staged(r)), event: .polled, facts: World.facts(release: nil), to: .checking),
        // waiting.
        .init(name: "waiting: newer policy", from: World.snapshot(.waiting(r)), event: .polled, facts: World.facts(release: other), to: .checking),
        .init(
            name: "waiting: already runs it", from: World.snapshot(.waiting(r)), event: .tick, facts: World.facts(waitingFor: .upToDate),
            to: .checking),
        .init(
            name: "waiting: ask for a slot", from: World.snapshot(.waiting(r)), event: .tick, facts: World.facts(), to: .waiting,
            effect: .askSlot(group: "workers"), slot: .unknown(group: "workers")),
        .init(
            name: "waiting: slot granted", from: World.snapshot(.waiting(r), slot: .unknown(group: "workers")),
            event: .slotAsked(.granted, group: "workers"), facts: World.facts(), to: .finalizing, slot: .held(group: "workers")),
        .init(
            name: "waiting: slot refused", from: World.snapshot(.waiting(r), slot: .unknown(group: "workers")),
            event: .slotAsked(.refused("too-many: 1"), group: "workers"), facts: World.facts(), to: .waiting, slot: .free),
        .init(
            name: "waiting: the answer was lost", from: World.snapshot(.waiting(r), slot: .unknown(group: "workers")),
            event: .slotAsked(.unreachable("connection refused"), group: "workers"), facts: World.facts(), to: .waiting,
            slot: .unknown(group: "workers")),
        .init(
            name: "waiting: no FleetLock server", from: World.snapshot(.waiting(r)), event: .tick, facts: World.facts(lockGroup: nil),
            to: .finalizing),
        .init(
            name: "waiting: slot held", from: World.snapshot(.waiting(r), slot: .held(group: "workers")), event: .tick, facts: World.facts(),
            to: .finalizing),
        .init(
            name: "waiting: the window closed with an unused slot", from: World.snapshot(.waiting(r), slot: .held(group: "workers")), event: .tick,
            facts: World.facts(waitingFor: .outsideWindow), to: .waiting, effect: .releaseSlot(group: "workers"),
            slot: .unknown(group: "workers")),
        .init(
            name: "waiting: the unused slot given back", from: World.snapshot(.waiting(r), slot: .unknown(group: "workers")),
            event: .slotReleased(true), facts: World.facts(waitingFor: .outsideWindow), to: .waiting, slot: .free),
        .init(
            name: "waiting: outside the window, no slot", from: World.snapshot(.waiting(r), reason: "waiting: outside-window"), event: .tick,
            facts: World.facts(waitingFor: .outsideWindow), to: nil),
        .init(
            name: "waiting: the FleetLock server busy asks again", from: World.snapshot(.waiting(r)), event: .tick,
            facts: World.facts(waitingFor: .lockBusy), to: .waiting, effect: .askSlot(group: "workers"), slot: .unknown(group: "workers")),
        // finalizing.
        .init(
            name: "finalize the staged deployment", from: World.snapshot(.finalizing(r), slot: .held(group: "workers")), event: .tick,
            facts: World.facts(deployments: World.deployments(booted: World.base, defaultCommit: World.base, staged: true)), to: nil,
            effect: .finalize),
        .init(
            name: "finalized: reboot", from: World.snapshot(.finalizing(r), slot: .held(group: "workers")), event: .finalized(nil),
            facts: World.facts(), to: .rebooting, effect: .reboot, attempts: 1),
        .init(
            name: "nothing staged (deployed): reboot", from: World.snapshot(.finalizing(World.rollout(attempts: 1))), event: .tick,
            facts: World.facts(), to: .rebooting, effect: .reboot, attempts: 2),
        .init(
            name: "finalizing failed", from: World.snapshot(.finalizing(r)), event: .finalized(DriverFailure("locked")), facts: World.facts(),
            to: .failed),
        // Reboot hooks (pre-reboot drains with the slot held; post-boot rejoins).
        .init(
            name: "finalizing with pre-reboot hooks runs them first", from: World.snapshot(.finalizing(r), slot: .held(group: "workers")),
            event: .tick,
            facts: World.hooked(World.facts(deployments: DeploymentFacts(booted: World.base, defaultCommit: World.base, hasStaged: true))),
            to: .finalizing, effect: .runPreRebootHooks),
        .init(
            name: "pre-reboot hooks passed: finalize", from: World.snapshot(.finalizing(r), slot: .held(group: "workers")),
            event: .preRebootHooksRan(failure: nil),
            facts: World.hooked(World.facts(deployments: DeploymentFacts(booted: World.base, defaultCommit: World.base, hasStaged: true))),
            to: nil, effect: .finalize),
        .init(
            name: "a pre-reboot hook failed: postponed, slot given back", from: World.snapshot(.finalizing(r), slot: .held(group: "workers")),
            event: .preRebootHooksRan(failure: "unit drain.service: the unit failed"), facts: World.hooked(World.facts()), to: .waiting,
            effect: .releaseSlot(group: "workers"), slot: .unknown(group: "workers")),
        .init(
            name: "postponed: no slot asked", from: World.snapshot(.waiting(r), reason: "pre-reboot hook failed: x; reboot postponed"), event: .tick,
            facts: World.hooked(World.facts(), postponedUntil: World.t0.addingTimeInterval(600)), to: nil),
        .init(
            name: "postponement over: asks again", from: World.snapshot(.waiting(r), reason: "pre-reboot hook failed: x; reboot postponed"),
            event: .tick, facts: World.hooked(World.facts(), postponedUntil: World.t0), to: .waiting, effect: .askSlot(group: "workers"),
            slot: .unknown(group: "workers")),
        .init(
            name: "checks pass: post-boot hooks", from: World.snapshot(.verifying(r)), event: .verified(unhealthy: nil),
            facts: World.hooked(World.facts()), to: .verifying, effect: .runPostBootHooks),
        .init(
            name: "post-boot hooks ran: healthy", from: World.snapshot(.verifying(r)), event: .postBootHooksRan(failure: nil),
            facts: World.hooked(World.facts()), to: .healthy, attempts: 0),
        .init(
            name: "a post-boot hook failed: healthy, reported", from: World.snapshot(.verifying(r)),
            event: .postBootHooksRan(failure: "command /usr/local/sbin/uncordon: exited 1"), facts: World.hooked(World.facts()), to: .healthy),
        .init(
            name: "max-attempts: give up", from: World.snapshot(.finalizing(World.rollout(attempts: 3))), event: .tick,
            facts: World.facts(maxAttempts: 3), to: .failed, denylists: true),
        .init(
            name: "finalizing: deployments unreadable", from: World.snapshot(.finalizing(r)), event: .tick, facts: World.facts(deployments: nil),
            blocked: true),
        // rebooting.
        .init(
            name: "booted after finalizing", from: World.snapshot(.rebooting(r, into: .release)), event: .tick, facts: World.facts(boot: "boot-2"),
            to: .verifying),
        .init(
            name: "booted after rolling back", from: World.snapshot(.rebooting(r, into: .previousDeployment)), event: .tick,
            facts: World.facts(boot: "boot-2"), to: .failed, denylists: true),
        .init(
            name: "same boot, within 5 s", from: World.snapshot(.rebooting(r, into: .release)), event: .tick,
            facts: World.facts(now: World.t0.addingTimeInterval(3)), to: nil),
        .init(
            name: "same boot after 5 s: reboot again", from: World.snapshot(.rebooting(r, into: .release)), event: .tick,
            facts: World.facts(now: World.t0.addingTimeInterval(6)), to: .rebooting, effect: .reboot),
        // verifying.
        .init(
            name: "a boot while verifying counts", from: World.snapshot(.verifying(World.rollout(attempts: 1))), event: .tick,
            facts: World.facts(boot: "boot-2", maxAttempts: 3), to: .verifying, attempts: 2),
        .init(
            name: "the max-attempts-th boot while verifying rolls back", from: World.snapshot(.verifying(World.rollout(attempts: 2))), event: .tick,
            facts: World.facts(boot: "boot-2", maxAttempts: 3), to: .rollingBack, attempts: 3),
        .init(
            name: "verify the release", from: World.snapshot(.verifying(r)), event: .tick,
            facts: World.facts(deployments: World.deployments(booted: r.commit, defaultCommit: r.commit)), to: nil, effect: .verify),
        .init(
            name: "healthy", from: World.snapshot(.verifying(World.rollout(attempts: 1))), event: .verified(unhealthy: nil), facts: World.facts(),
            to: .healthy, attempts: 0),
        .init(
            name: "unhealthy", from: World.snapshot(.verifying(r)), event: .verified(unhealthy: "unit x.service is not active"),
            facts: World.facts(), to: .rollingBack),
        .init(
            name: "the bootloader fell back", from: World.snapshot(.verifying(r)), event: .tick,
            facts: World.facts(deployments: World.deployments(booted: World.base, defaultCommit: r.commit)), to: .rollingBack),
        .init(
            name: "verifying: deployments unreadable", from: World.snapshot(.verifying(r)), event: .tick, facts: World.facts(deployments: nil),
            blocked: true),
        // rolling-back.
        .init(
            name: "roll back", from: World.snapshot(.rollingBack(r)), event: .tick,
            facts: World.facts(deployments: World.deployments(booted: r.commit, defaultCommit: r.commit)), to: nil, effect: .rollBack),
        .init(
            name: "rolled back: reboot, slot kept", from: World.snapshot(.rollingBack(r), slot: .held(group: "workers")), event: .rolledBack(nil),
            facts: World.facts(deployments: World.deployments(booted: r.commit, defaultCommit: World.base)), to: .rebooting, effect: .reboot,
            slot: .held(group: "workers")),
        .init(
            name: "rollback failed: tried again after a pause, never given up", from: World.snapshot(.rollingBack(r)),
            event: .rolledBack(DriverFailure("busy")), facts: World.facts(), to: .rollingBack, blocked: true),
        .init(
            name: "fell back and no longer the default: give up", from: World.snapshot(.rollingBack(r)), event: .tick,
            facts: World.facts(deployments: World.deployments(booted: World.base, defaultCommit: World.base)), to: .failed, denylists: true),
        .init(
            name: "rolling-back: deployments unreadable", from: World.snapshot(.rollingBack(r)), event: .tick, facts: World.facts(deployments: nil),
            blocked: true),
        // Slots in steady states.
        .init(
            name: "healthy gives the slot back", from: World.snapshot(.healthy(r), slot: .held(group: "workers")), event: .tick,
            facts: World.facts(), to: .healthy, effect: .releaseSlot(group: "workers"), slot: .unknown(group: "workers")),
        .init(
            name: "failed gives an unknown slot back", from: World.snapshot(.failed(last: r), slot: .unknown(group: "workers")), event: .tick,
            facts: World.facts(), to: nil, effect: .releaseSlot(group: "workers")),
        .init(
            name: "released", from: World.snapshot(.failed(last: r), slot: .unknown(group: "workers")), event: .slotReleased(true),
            facts: World.facts(), to: .failed, slot: .free),
        .init(
            name: "not released: stays unknown", from: World.snapshot(.failed(last: r), slot: .unknown(group: "workers")),
            event: .slotReleased(false), facts: World.facts(), to: nil),
        .init(
            name: "no FleetLock server: nothing to give back", from: World.snapshot(.upToDate(last: nil), slot: .unknown(group: nil)), event: .tick,
            facts: World.facts(lockGroup: nil), to: .upToDate, slot: .free),
    ]

    @Test(arguments: rows) func step(_ row: StepRow) {
        let decision = DriverMachine.step(row.from, row.event, row.facts)
        #expect((decision.blocked != nil) == row.blocked, "blocked: \(decision.blocked ?? "no")")
        #expect(decision.next?.state.kind == row.to, "journaled \(decision.next?.state.kind.rawValue ?? "nothing")")
        #expect(decision.effect == row.effect)
        #expect((decision.denylist != nil) == row.denylists)
        if let slot = row.slot { #expect(decision.next?.slot == slot) }
        if let attempts = row.attempts { #expect(decision.next?.state.rollout?.attempts == attempts) }
        if let next = decision.next, next.state.kind != row.from.state.kind {
            #expect(row.from.state.kind.canMove(to: next.state.kind), "the journal would refuse \(row.from.state.kind) -> \(next.state.kind)")
            #expect(next.since == row.facts.now && next.bootID == row.facts.bootID)
        }
        if let entry = decision.denylist, let rollout = row.from.state.rollout {
            #expect(entry.releaseId == rollout.releaseId && entry.commit == rollout.commit && entry.reason == decision.next?.reason)
        }
        if decision.blocked != nil { #expect(decision.effect == nil) }
    }

    /// The table covers every move the journal allows, which are the ones docs/fleet.md draws.
    @Test func theTableCoversEveryDrawnEdge() throws {
        let covered = Set(
            Self.rows.compactMap { row in row.to.flatMap { $0 == row.from.state.kind ? nil : "\(row.from.state.kind.rawValue)>\($0.rawValue)" } })
        let allowed = Set(UpdateState.transitions.map { "\($0.0.rawValue)>\($0.1.rawValue)" })
        #expect(
            covered == allowed,
            "allowed but not in the table: \(allowed.subtracting(covered)); in the table but refused: \(covered.subtracting(allowed))")
        let doc = try String(contentsOfFile: "\(Self.packageRoot)/docs/fleet.md", encoding: .utf8)
        let diagram = try #require(doc.components(separatedBy: "```mermaid").dropFirst().first?.components(separatedBy: "```").first)
        var drawn: Set<String> = []
        for line in diagram.split(separator: "\n") where line.contains("-->") && !line.contains("[*]") {
            let ends = line.split(separator: ":", maxSplits: 1)[0].components(separatedBy: "-->")
            drawn.insert(ends.map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-") }.joined(separator: ">"))
        }
        #expect(drawn == allowed)
    }

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}
