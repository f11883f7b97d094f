import APTLayerFleet
import APTLayerJournal
import APTLayerModel
import Foundation
import TestSupport
import Testing

@testable import APTLayerDriver

/// A simulated host for the machine: a journal that sometimes refuses writes, a denylist, a
/// deployment list that follows the effects, reboots that sometimes happen, and facts that are
/// random where the world is (policy, waves, windows, FleetLock answers, health) and sometimes
/// unreadable.
struct SimulatedHost {
    var rng: SeededGenerator
    var journaled: DriverSnapshot
    var denylist: Set<String> = []
    var boot = 1
    var booted = World.base
    var defaultCommit = World.base
    var staged: String?
    var now = World.t0
    let maxAttempts = 3
    /// Reboots into each release since it was last healthy, as the property counts them.
    var rebootsInto: [String: Int] = [:]
    var violations: [String] = []
    var steps = 0
    /// How often the bootloader falls back and a rollback fails: hostile worlds reach the
    /// max-attempts give-up.
    let fallbackChance: Double
    let rollbackFailureChance: Double
    /// How often a release crashes the host while it is verified.
    let crashChance: Double
    var gaveUpOnAttempts = false
    var pinned: ReleaseOrder? = World.release1
    var trace: [String] = []
    /// The journal's `fleet_attempts`: written with every journaled state that names a release.
    var attemptsTable: [String: Int] = [:]
    /// Whether this world's policy names pre-reboot/post-boot hooks, whether they succeeded since
    /// the last reboot, and until when a failed one postpones the next slot request.
    let hooks: Bool
    var drained = false
    var postponedUntil: Date?
    var drainFailures = 0

    init(seed: UInt64) {
        rng = SeededGenerator(seed: seed)
        fallbackChance = seed % 2 == 0 ? 0.6 : 0.1
        rollbackFailureChance = seed % 3 == 0 ? 0.6 : 0.1
        crashChance = seed % 5 == 0 ? 0.7 : 0.05
        hooks = seed % 4 != 0
        journaled = World.snapshot(.idle(last: nil), slot: .unknown(group: nil), reason: "no policy fetched yet", since: World.t0)
    }

    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    mutating func randomFacts(cooperative: Bool) -> DriverFacts {
        // The policy changes its release now and then (a new one, or none).
        if chance(0.03) { pinned = [World.release1, World.release2, nil].randomElement(using: &rng)! }
        let release = cooperative ? nil : pinned
        let reasons: [WaitReason?] = [nil, nil, nil, nil, nil, .waveNotOpen, .notEligibleYet, .outsideWindow, .lockBusy, .policyExpired]
        var waitingFor = cooperative ? .noRelease : reasons.randomElement(using: &rng)!
        let listed = release.map { denylist.contains($0.commit) } ?? false
        if let release, release.commit == booted { waitingFor = .upToDate } else if listed { waitingFor = .denylisted }
        let unreadable = !cooperative && chance(0.05)
        var facts = DriverFacts(
            now: now, bootID: "boot-\(boot)", release: release,
            explanation: cooperative || chance(0.9) ? World.explanation(waitingFor, release: release) : nil,
            denylisted: unreadable ? nil : listed,
            releaseAttempts: unreadable ? nil : release.map { attemptsTable[$0.commit] ?? 0 } ?? 0,
            deployments: !cooperative && chance(0.05) ? nil : DeploymentFacts(booted: booted, defaultCommit: defaultCommit, hasStaged: staged != nil),
            lockGroup: "workers", maxAttempts: maxAttempts, lastFetch: nil)
        facts.hasPreRebootHooks = hooks
        facts.hasPostBootHooks = hooks
        facts.rebootPostponedUntil = postponedUntil
        return facts
    }

    /// The outcome of an effect in this world (and what it does to the deployments).
    mutating func perform(_ effect: DriverEffect, cooperative: Bool) -> DriverEvent {
        switch effect {
        case .stage(let release):
            if !cooperative && chance(0.2) { return .staged(.failure(DriverFailure("pull failed"))) }
            staged = release.commit
            return .staged(.success("t-\(steps)"))
        case .askSlot(let group):
            let answers: [SlotAnswer] = [.granted, .refused("too-many: 1"), .unreachable("timed out")]
            return .slotAsked(answers.randomElement(using: &rng)!, group: group)
        case .releaseSlot: return .slotReleased(cooperative || chance(0.7))
        case .finalize: return .finalized(!cooperative && chance(0.1) ? DriverFailure("busy") : nil)
        case .reboot:
            // The reboot happens (a new boot), or the command failed (same boot).
            guard cooperative || chance(0.8) else { return .rebootRan(false) }
            boot += 1
            drained = false
            if let staged {
                defaultCommit = staged
                self.staged = nil
            }
            // Sometimes the bootloader falls back to the previous deployment.
            booted = !cooperative && chance(fallbackChance) ? World.base : defaultCommit
            return .rebootRan(true)
        case .verify:
            // The release crashes the host now and then while it is verified (a new boot).
            if !cooperative && chance(crashChance), case .verifying(let r) = journaled.state {
                boot += 1
                rebootsInto[r.commit, default: 0] += 1
                if rebootsInto[r.commit, default: 0] > maxAttempts {
                    violations.append("boot \(rebootsInto[r.commit]!) into release \(r.releaseId) (max \(maxAttempts))")
                }
                return .rebootRan(true)
            }
            return .verified(unhealthy: !cooperative && chance(0.4) ? "unit x.service is not active" : nil)
        case .rollBack:
            if !cooperative && chance(rollbackFailureChance) { return .rolledBack(DriverFailure("busy")) }
            defaultCommit = World.base
            return .rolledBack(nil)
        case .runPreRebootHooks:
            if !hooks { violations.append("ran pre-reboot hooks the policy does not name") }
            if !cooperative && chance(0.3) {
                drained = false
                drainFailures += 1
                postponedUntil = now.addingTimeInterval(60)
                return .preRebootHooksRan(failure: "command /usr/local/sbin/drain: exited 1")
            }
            drained = true
            return .preRebootHooksRan(failure: nil)
        case .runPostBootHooks:
            if !hooks { violations.append("ran post-boot hooks the policy does not name") }
            return .postBootHooksRan(failure: !cooperative && chance(0.2) ? "unit rejoin.service: the unit failed" : nil)
        }
    }

    /// One `advance`, as the driver runs it: step, journal (which may refuse), effect, repeat.
    mutating func advance(_ first: DriverEvent, cooperative: Bool) {
        var event = first
        for _ in 0..<16 {
            steps += 1
            now = now.addingTimeInterval(Double.random(in: 0...10, using: &rng))
            let facts = randomFacts(cooperative: cooperative)
            let current = journaled
            let decision = DriverMachine.step(current, event, facts)
            if decision.blocked != nil {
                if decision.effect != nil { violations.append("a blocked step ran an effect") }
                if let next = decision.next, !cooperative && chance(0.1) == false { journaled = next }
                return
            }
            if let effect = decision.effect, case .stage(let release) = effect, denylist.contains(release.commit) || facts.denylisted != false {
                violations.append("staged release \(release.id), denylisted or unknown (\(String(describing: facts.denylisted)))")
            }
            if decision.next != nil || decision.denylist != nil {
                // The journal refuses a write now and then: nothing of the decision happens.
                if !cooperative && chance(0.1) { return }
                let next = decision.next ?? current
                if next.state.kind != current.state.kind && !current.state.kind.canMove(to: next.state.kind) {
                    violations.append("illegal move \(current.state.kind.rawValue) -> \(next.state.kind.rawValue)")
                }
                if let entry = decision.denylist {
                    denylist.insert(entry.commit)
                    if entry.reason.contains("did not come up healthy") || entry.reason.contains("boots)") { gaveUpOnAttempts = true }
                }
                if case .rebooting(let r, .release) = next.state, current.state.kind != .rebooting {
                    rebootsInto[r.commit, default: 0] += 1
                    if rebootsInto[r.commit, default: 0] > maxAttempts {
                        violations.append("reboot \(rebootsInto[r.commit]!) into release \(r.releaseId) (max \(maxAttempts))")
                    }
                }
                if case .healthy(let r?) = next.state { rebootsInto[r.commit] = 0 }
                if next.state.kind != current.state.kind {
                    trace.append("\(next.state.kind.rawValue)[\(next.state.rollout.map { "\($0.releaseId.suffix(1))a\($0.attempts)" } ?? "-")]")
                }
                journaled = next
                if let r = next.state.rollout { attemptsTable[r.commit] = r.attempts }
            }
            guard let effect = decision.effect else {
                guard let next = decision.next, next.state.kind != current.state.kind else { return }
                event = first == .polled ? .polled : .tick
                continue
            }
            if effect == .reboot, journaled.state.kind != .rebooting {
                violations.append("reboot without a journaled rebooting (journaled \(journaled.state.kind.rawValue))")
            }
            if effect == .reboot, case .rebooting(_, .release) = journaled.state, hooks, !drained {
                violations.append("rebooted into a release without the pre-reboot hooks succeeding first")
            }
            if effect == .askSlot(group: "workers"), let until = postponedUntil, until > now {
                violations.append("asked for a slot while a failed pre-reboot hook postpones it")
            }
            event = perform(effect, cooperative: cooperative)
        }
    }

    mutating func randomEvent() -> DriverEvent { [.tick, .tick, .tick, .pollStarting, .polled].randomElement(using: &rng)! }
}

@Suite("update driver machine: properties over random worlds", .tags(.fast))
struct DriverMachinePropertyTests {
    /// 1,000 random worlds of 150 rounds each (polls, ticks, effects with random outcomes, failing
    /// reads and journal writes, fallbacks): the machine never reboots without a journaled
    /// `rebooting`, never reboots more than max-attempts times into one release, never stages a
    /// denylisted release (or one whose denylist could not be read), makes only moves the journal
    /// allows, and once the world calms down (the policy pins nothing, everything answers) every
    /// host ends settled with its slot given back.
    @Test func safetyHoldsInEveryWorld() {
        var stagedSomewhere = 0
        var rebootedSomewhere = 0
        var gaveUpSomewhere = 0
        var attemptsExhausted = 0
        for seed in UInt64(1)...1000 {
            var host = SimulatedHost(seed: seed)
            var everHeld = false
            for _ in 0..<150 {
                host.advance(host.randomEvent(), cooperative: false)
                if case .held = host.journaled.slot { everHeld = true }
            }
            if host.defaultCommit != World.base || host.staged != nil { stagedSomewhere += 1 }
            if host.boot > 1 { rebootedSomewhere += 1 }
            if !host.denylist.isEmpty { gaveUpSomewhere += 1 }
            if host.gaveUpOnAttempts { attemptsExhausted += 1 }
            // Calm: the policy pins nothing, every read and answer succeeds.
            for _ in 0..<40 { host.advance(host.randomEvent(), cooperative: true) }
            host.advance(.polled, cooperative: true)
            #expect(host.violations.isEmpty, "seed \(seed): \(host.violations.prefix(3)); moves: \(host.trace.suffix(40).joined(separator: " "))")
            #expect(host.journaled.state.isSteady, "seed \(seed): ends in \(host.journaled.state.kind.rawValue)")
            #expect(host.journaled.slot == .free, "seed \(seed): slot \(host.journaled.slot) (ever held: \(everHeld))")
        }
        // The worlds reach the interesting states at all (else the properties hold vacuously).
        #expect(
            stagedSomewhere > 100 && rebootedSomewhere > 50 && gaveUpSomewhere > 10 && attemptsExhausted > 0,
            "staged \(stagedSomewhere), rebooted \(rebootedSomewhere), gave up \(gaveUpSomewhere), attempts exhausted \(attemptsExhausted)")
    }
}
