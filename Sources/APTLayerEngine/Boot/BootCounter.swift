import APTLayerModel
import Foundation
import Glibc

/// The boot counter in GRUB's environment block (`/boot/grub/grubenv`): before a reboot into a
/// new deployment it is armed with a number of tries; the boot menu counts them down and, at
/// zero, boots the previous deployment and records that it fell back; once the new deployment is
/// known good the counter is cleared. This type reads and writes the variables; the menu script is
/// ``BootMenu``, the engine arms and disarms (`Engine+BootCounting.swift`), the agent marks boots
/// good (docs/boot-counting.md).
///
/// A block that is missing or unreadable never stops a boot: it reads as unarmed, with the
/// problem reported, and arming or clearing writes a fresh block.
public struct BootCounter: Sendable {
    /// Tries left for the default entry (absent: not armed).
    public static let triesVariable = "apt_layer_tries"
    /// Set to 1 by the menu when it booted the previous entry.
    public static let fellBackVariable = "apt_layer_fell_back"
    /// The deployment (commit checksum) the counter protects; the menu does not read it.
    public static let deploymentVariable = "apt_layer_deployment"

    /// What the block says.
    public enum State: Equatable, Sendable {
        case unarmed
        /// Armed for `deployment` (nil: a block armed by something that did not say).
        case armed(triesLeft: Int, deployment: String?)
        /// The menu booted the previous entry instead of `deployment`.
        case fellBack(deployment: String?)
    }

    /// The block's path.
    public let path: String

    /// The counter in `SYSROOT/boot/grub/grubenv`.
    public init(sysroot: String) { path = (sysroot == "/" ? "" : sysroot) + "/boot/grub/grubenv" }

    /// The counter in the block at `path`.
    public init(path: String) { self.path = path }

    /// The state, and why the block could not be read when it could not (then: unarmed).
    public func read() -> (state: State, problem: String?) {
        guard let data = FileManager.default.contents(atPath: path) else {
            return (.unarmed, FileTree.exists(path) ? "cannot read \(path)" : nil)
        }
        let block: GrubEnvironment
        do { block = try GrubEnvironment(parsing: Array(data)) } catch { return (.unarmed, "\(path): \(error)") }
        let deployment = block[Self.deploymentVariable]
        if block[Self.fellBackVariable] == "1" { return (.fellBack(deployment: deployment), nil) }
        guard let text = block[Self.triesVariable] else { return (.unarmed, nil) }
        guard let tries = Int(text), (0...9).contains(tries) else { return (.unarmed, "\(path): \(Self.triesVariable)=\(text) is not 0...9") }
        return (.armed(triesLeft: tries, deployment: deployment), nil)
    }

    /// Arms the counter with `tries` (1...9: the menu counts down with single digits) for
    /// `deployment` and clears a recorded fall-back; the block's other variables stay.
    public func arm(tries: Int, deployment: String? = nil) throws {
        guard (1...9).contains(tries) else { throw EngineError(.invalidArgument, "boot tries must be 1 to 9, not \(tries)") }
        try update {
            $0[Self.triesVariable] = String(tries)
            $0[Self.fellBackVariable] = nil
            $0[Self.deploymentVariable] = deployment
        }
    }

    /// Whether the block exists (an image made by `compose image` has one; a sysroot without it
    /// has no counting menu and is never armed).
    public var exists: Bool { FileTree.exists(path) }

    /// Clears the counter and a recorded fall-back (the boot is good, or the fall-back was handled).
    public func clear() throws {
        try update {
            $0[Self.triesVariable] = nil
            $0[Self.fellBackVariable] = nil
            $0[Self.deploymentVariable] = nil
        }
    }

    /// Rewrites the block through a temporary file, flushed and renamed over it: a power cut leaves
    /// the old block or the new one (GRUB finds the file anew at every boot).
    private func update(_ change: (inout GrubEnvironment) -> Void) throws {
        var block = FileManager.default.contents(atPath: path).flatMap { try? GrubEnvironment(parsing: Array($0)) } ?? GrubEnvironment()
        change(&block)
        let bytes: [UInt8]
        do { bytes = try block.serialized() } catch { throw EngineError(.system, "\(path): \(error)") }
        try FileTree.replaceDurably(path, bytes)
    }
}
