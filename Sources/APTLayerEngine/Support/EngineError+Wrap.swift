import APTLayerModel
import Foundation

extension EngineError {
    /// Wraps any error as an engine error, keeping engine errors and cancellation as they are.
    static func wrap(_ error: any Error, _ context: String) -> EngineError {
        if let e = error as? EngineError { return e }
        if error is CancellationError { return EngineError(.cancelled, "cancelled") }
        let text = String(describing: error)
        if text.contains("No space left on device") {
            return EngineError(.system, "\(context): no space left on device", underlying: error)
        }
        return EngineError(.system, "\(context): \(text)", underlying: error)
    }
}
