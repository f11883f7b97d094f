import APTLayerModel
import Dispatch

extension Engine {
    /// How a program run by ``runProgram(_:timeout:)`` ended.
    public struct ProgramResult: Sendable, Equatable {
        /// Exit status, 128+signal when killed, -1 when it could not start.
        public var status: Int32
        /// Its output (stdout and stderr interleaved), or why it could not start.
        public var output: String
        /// Killed because it ran longer than the timeout.
        public var timedOut: Bool

        public init(status: Int32, output: String, timedOut: Bool) {
            self.status = status
            self.output = output
            self.timedOut = timedOut
        }
    }

    /// Runs `argv` with the engine's child discipline (own process group, parent-death signal,
    /// no inherited descriptors), killing its group after `timeout` seconds. Blocking: call it off
    /// the cooperative pool. The fleet driver runs health-check commands and the reboot command
    /// through it.
    public static func runProgram(_ argv: [String], timeout: Double) -> ProgramResult {
        guard !argv.isEmpty else { return ProgramResult(status: -1, output: "empty command", timedOut: false) }
        let token = CancellationToken()
        let timer = DispatchWorkItem { token.cancel() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        defer { timer.cancel() }
        do {
            let result = try Subprocess.run(argv, token: token)
            return ProgramResult(status: result.status, output: result.output, timedOut: token.isCancelled)
        } catch {
            let message = (error as? EngineError)?.message ?? "\(error)"
            return ProgramResult(status: -1, output: token.isCancelled ? "timed out after \(Int(timeout)) s" : message, timedOut: token.isCancelled)
        }
    }
}
