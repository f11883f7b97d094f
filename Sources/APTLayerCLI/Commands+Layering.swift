import APTLayerEngine
import APTLayerModel
import ArgumentParser
import Foundation

/// A verb that is one ``HostOperation``: it builds the operation from its arguments, and
/// ``TransactionRunner`` runs it through the agent or locally. Nothing else differs between paths.
protocol OperationCommand: ParsableCommand {
    var global: GlobalOptions { get }
    /// The operation these arguments ask for.
    func operation() -> HostOperation
}

extension OperationCommand {
    func run() throws { try TransactionRunner.run(operation(), global) }
}

struct LayeringOptions: ParsableArguments {
    @Flag(name: .long, help: "Tolerate already-requested or absent names.")
    var idempotent = false
    @Flag(name: [.customShort("n"), .long], help: "Show what would change; build nothing.")
    var dryRun = false
    @Flag(name: .long, help: "Allow linux-image-* and bootloader packages.")
    var allowKernel = false
    @Flag(name: .long, help: "Stage with finalization locked (booted hosts); apply with `finalize`.")
    var lockFinalization = false
    @Flag(name: .long, help: "Update package lists even when they are fresh (upgrade always does).")
    var refresh = false

    var flags: LayeringFlags {
        .init(idempotent: idempotent, dryRun: dryRun, allowKernel: allowKernel, lockFinalization: lockFinalization, refresh: refresh)
    }
}

struct Install: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "install", abstract: "Layer packages (names or .deb files) into a new deployment.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Flag(name: [.customShort("A"), .long], help: "Apply the new deployment to the running system too (apply-live).")
    var applyLive = false
    @OptionGroup var live: LiveFlags
    @Argument(help: "Package names or paths to .deb files.") var packages: [String] = []
    func validate() throws {
        if !applyLive && (live.allowReplacement || live.startServices) {
            throw ValidationError("--allow-replacement and --start go with --apply-live")
        }
    }
    func operation() -> HostOperation {
        // .deb paths are made absolute: the agent reads them from the host's filesystem.
        let items = packages.map { Operand.isHostPath($0) ? URL(fileURLWithPath: $0).standardizedFileURL.path : $0 }
        var flags = layering.flags
        if applyLive { flags.live = live.options }
        return .install(packages: items, flags: flags)
    }
}

struct Uninstall: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "uninstall", abstract: "Remove layered packages into a new deployment.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Flag(name: .long, help: "Remove every layered package.") var all = false
    @Argument var packages: [String] = []
    func operation() -> HostOperation { .uninstall(packages: packages, all: all, flags: layering.flags) }
}

struct Override: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "override",
        abstract: "Remove or replace base packages, or undo that.", subcommands: [Remove.self, Replace.self, Reset.self])

    struct Remove: OperationCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove base packages in a new deployment.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var layering: LayeringOptions
        @Argument var packages: [String] = []
        func operation() -> HostOperation { .overrideRemove(packages: packages, flags: layering.flags) }
    }

    struct Replace: OperationCommand {
        static let configuration = CommandConfiguration(
            commandName: "replace",
            abstract: "Replace base packages in a new deployment: with .deb files, or with a suite's version (--from-repo).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var layering: LayeringOptions
        @Option(name: .customLong("from-repo"), help: "Take the named packages from this suite of the apt sources (e.g. bookworm-security).")
        var fromRepo: String?
        @Argument(help: ".deb files (or, with --from-repo, package names).") var packages: [String] = []
        func operation() -> HostOperation {
            // .deb paths are made absolute, as install's: the agent reads them from the host's filesystem.
            let items = fromRepo != nil ? packages : packages.map { Operand.isHostPath($0) ? URL(fileURLWithPath: $0).standardizedFileURL.path : $0 }
            return .overrideReplace(packages: items, fromRepo: fromRepo, flags: layering.flags)
        }
    }

    struct Reset: OperationCommand {
        static let configuration = CommandConfiguration(commandName: "reset", abstract: "Restore removed or replaced base packages.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var layering: LayeringOptions
        @Flag(name: .long, help: "Reset every override.") var all = false
        @Argument var packages: [String] = []
        func operation() -> HostOperation { .overrideReset(packages: packages, all: all, flags: layering.flags) }
    }
}

struct Upgrade: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "upgrade", abstract: "Move to the newest base commit and re-apply the layering.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Flag(name: .long, help: "Only report whether anything would change (exit 77 when not).") var check = false
    func operation() -> HostOperation { .upgrade(check: check, flags: layering.flags) }
}

struct Deploy: OperationCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy", abstract: "Move the base to a VERSION or CHECKSUM of its ref, keeping the layering.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Argument(help: "A version string or a (prefix of a) commit checksum.") var target: String
    func operation() -> HostOperation { .deploy(target: target, flags: layering.flags) }
}

struct Rebase: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "rebase", abstract: "Switch the base to another ref, keeping the layering.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Argument(help: "REF or REMOTE:REF.") var ref: String
    @Argument(help: "A version or commit checksum of REF to pin (a full checksum is pulled by itself).") var revision: String?
    @Option(name: .customLong("remote-url"), help: "Add REMOTE of REMOTE:REF (or re-point it) to this URL first, in the same transaction.")
    var remoteURL: String?
    func operation() -> HostOperation { .rebase(ref: ref, target: revision, remoteURL: remoteURL, flags: layering.flags) }
}
