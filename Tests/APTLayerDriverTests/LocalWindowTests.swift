import Foundation
import TestSupport
import Testing

@testable import APTLayerDriver
@testable import APTLayerFleet

/// A host's local `windows:` narrow the policy's: an eligible host waits outside them, and a slot
/// it holds when its local window closes is given back before the reboot.
@Suite("update driver: local maintenance windows", .tags(.fast))
struct LocalWindowTests {
    /// Saturdays 02:00–04:00 UTC.
    static let saturdayNight = [MaintenanceWindow(days: ["Sat"], start: "02:00", length: PolicyDuration(seconds: 7200), tz: "UTC")]
    /// 2026-12-05 is a Saturday.
    static let inside = ISO8601DateFormatter().date(from: "2026-12-05T03:00:00Z")!
    static let outside = ISO8601DateFormatter().date(from: "2026-12-05T05:00:00Z")!

    @Test func anEligibleHostWaitsOutsideItsLocalWindow() {
        let eligible = World.explanation(nil)
        let narrowed = eligible.narrowed(by: Self.saturdayNight, at: Self.outside, lockBusy: false)
        #expect(narrowed.waitingFor == .outsideWindow && !narrowed.windowOpen)
        #expect(narrowed.reason == "eligible; the local maintenance window is closed")
        #expect(eligible.narrowed(by: Self.saturdayNight, at: Self.inside, lockBusy: false) == eligible)
        // No local windows: the policy's alone decide.
        #expect(eligible.narrowed(by: [], at: Self.outside, lockBusy: false) == eligible)
        // A local window never widens the policy's: a host the policy keeps waiting stays waiting.
        let notYet = World.explanation(.notEligibleYet)
        #expect(notYet.narrowed(by: Self.saturdayNight, at: Self.inside, lockBusy: false) == notYet)
        // Inside every window with the FleetLock server refusing: lock-busy.
        #expect(eligible.narrowed(by: Self.saturdayNight, at: Self.inside, lockBusy: true).waitingFor == .lockBusy)
    }

    @Test func aSlotHeldWhenTheLocalWindowClosesIsGivenBack() {
        let waiting = World.snapshot(.waiting(World.rollout()), slot: .held(group: "workers"))
        var facts = World.facts(now: Self.outside)
        facts.explanation = World.explanation(nil).narrowed(by: Self.saturdayNight, at: Self.outside, lockBusy: false)
        let decision = DriverMachine.step(waiting, .tick, facts)
        #expect(decision.effect == .releaseSlot(group: "workers"))
        #expect(decision.next?.state.kind == .waiting && decision.next?.slot == .unknown(group: "workers"))
        // Inside the window the same host finalizes.
        facts.explanation = World.explanation(nil).narrowed(by: Self.saturdayNight, at: Self.inside, lockBusy: false)
        #expect(DriverMachine.step(waiting, .tick, facts).next?.state.kind == .finalizing)
    }
}
