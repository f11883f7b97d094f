import APTLayerFleet
import Foundation

extension PolicyExplanation {
    /// The explanation with this host's own view applied: its local maintenance windows (which
    /// narrow the policy's, never widen them) and a FleetLock server that has just refused a slot.
    public func narrowed(by localWindows: [MaintenanceWindow], at now: Date, lockBusy: Bool) -> PolicyExplanation {
        var explanation = self
        if explanation.waitingFor == nil && !localWindows.isOpen(at: now) {
            explanation.waitingFor = .outsideWindow
            explanation.reason = "eligible; the local maintenance window is closed"
            explanation.windowOpen = false
        }
        if explanation.waitingFor == nil && lockBusy {
            explanation.waitingFor = .lockBusy
            explanation.reason = "eligible and inside a window; the FleetLock server has no free slot"
        }
        return explanation
    }
}
