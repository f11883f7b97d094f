import APTLayerJournal
import Foundation

/// What runs ``DriverMachine``: it reads facts, journals decisions, runs effects. ``UpdateDriver``
/// is the one production conformer; the loop that ties them together is ``advance(_:)``, so that
/// the order (journal first, effect after) is written once and tested against a real journal.
protocol DriverRunning: Actor {
    /// The journaled state (nil while the journal's record cannot be read).
    var snapshot: DriverSnapshot? { get }
    /// Until when steps wait after a failure.
    var retryAt: Date? { get }
    /// The facts a step in `state` may consult; failed reads are nil.
    func readFacts(for state: DriverState) async -> DriverFacts
    /// Writes `next` (and `denylisting`) to the journal in one transaction.
    func save(_ next: DriverSnapshot, denylisting: DenylistRecord?) throws
    /// The journal has `next`: take it as the current state.
    func commit(_ next: DriverSnapshot, from current: DriverSnapshot, denylisted: DenylistRecord?)
    /// Runs an effect; its outcome is the next event.
    func perform(_ effect: DriverEffect) async -> DriverEvent
    /// A step not taken: log, count, back off.
    func failed(_ what: String, _ why: String)
    /// A step taken: the backoff ends.
    func recovered()
}

extension DriverRunning {
    /// Moves the machine as far as it goes now: read the facts, let ``DriverMachine`` decide,
    /// journal the decision, and only then run its effect, whose outcome is the next event. A
    /// decision that cannot be journaled, or that needed a fact that could not be read, is not
    /// acted on: logged, counted, retried after a pause.
    func advance(_ first: DriverEvent) async {
        var event = first
        for _ in 0..<16 {
            guard let current = snapshot else { return }
            if let retryAt, Date() < retryAt { return }
            let facts = await readFacts(for: current.state)
            let decision = DriverMachine.step(current, event, facts)
            if let why = decision.blocked, decision.next == nil {
                failed("step not taken", why)
                return
            }
            if decision.next != nil || decision.denylist != nil {
                let next = decision.next ?? current
                do {
                    try save(next, denylisting: decision.denylist)
                } catch {
                    failed("state not journaled", "\(next.state.kind.rawValue): \(error)")
                    return
                }
                commit(next, from: current, denylisted: decision.denylist)
            }
            if let why = decision.blocked {
                // Journaled why; retried after the backoff.
                failed("step failed", why)
                return
            }
            recovered()
            guard let effect = decision.effect else {
                // Go on only when the state moved; a new reason or slot waits for the next tick.
                guard let next = decision.next, next.state.kind != current.state.kind else { return }
                // Still at the end of the same poll (a release reconsidered goes through checking
                // and is decided on the policy just fetched); otherwise look again.
                event = first == .polled ? .polled : .tick
                continue
            }
            event = await perform(effect)
            // The agent is stopping: the outcome is not acted on; the journaled state resumes.
            if Task.isCancelled { return }
        }
    }
}
