import APTLayerModel
import Foundation

/// Turns apt/dpkg output into a one-line engine error naming the cause.
enum AptFailure {
    static func error(_ result: Subprocess.Result, program: String) -> EngineError {
        // A signal death is that, not whatever apt printed last ("Reading package lists...").
        if let death = result.signalDeath(program) { return EngineError(.packageFailed, death) }
        return error(from: result.output, status: result.status)
    }

    static func error(from output: String, status: Int32) -> EngineError {
        let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        if let line = lines.first(where: { $0.hasPrefix("E: Unable to locate package ") }) {
            return EngineError(.notFound, "unknown package: \(line.dropFirst("E: Unable to locate package ".count))")
        }
        if let line = lines.first(where: { $0.contains("has no installation candidate") }) {
            return EngineError(.notFound, line.replacingOccurrences(of: "E: ", with: ""))
        }
        if lines.contains(where: { $0.hasPrefix("E: Unable to correct problems") || $0.hasPrefix("E: Unmet dependencies") }) {
            let detail = lines.first {
                $0.contains(": Depends:") || $0.contains(": Conflicts:") || $0.contains(": Breaks:") || $0.contains(": PreDepends:")
            }
            return EngineError(.unsatisfiable, "unsatisfiable dependencies: \(detail ?? "apt could not find a consistent package set")")
        }
        if let line = lines.first(where: { $0.contains("trying to overwrite") }) {
            return EngineError(.packageFailed, "file conflict: \(line)")
        }
        if let line = lines.first(where: { $0.contains("script subprocess returned error exit status") }) {
            let package = lines.first { $0.hasPrefix("dpkg: error processing package ") }?
                .dropFirst("dpkg: error processing package ".count).split(separator: " ").first
            return EngineError(.packageFailed, "\(package.map { "\($0): " } ?? "")\(line)")
        }
        if lines.contains(where: { $0.contains("No space left on device") }) {
            return EngineError(.system, "no space left on device")
        }
        let reason =
            lines.last { $0.hasPrefix("E: ") && !$0.contains("Sub-process") } ?? lines.last { $0.hasPrefix("dpkg: error") } ?? lines.last
            ?? "exit status \(status)"
        return EngineError(.packageFailed, String(reason.hasPrefix("E: ") ? reason.dropFirst(3) : reason[...]))
    }
}
