import APTLayerEngine
import ArgumentParser
import Foundation

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

    /// The flags as agent API arguments.
    var arguments: [String: Any] {
        var a: [String: Any] = [:]
        if idempotent { a["idempotent"] = true }
        if dryRun { a["dryRun"] = true }
        if allowKernel { a["allowKernel"] = true }
        return a
    }

    /// The flags plus a package list (and `all`), as agent API arguments.
    func arguments(packages: [String], all: Bool = false) -> [String: Any] {
        var a = arguments
        a["packages"] = packages
        if all { a["all"] = true }
        return a
    }

    var flags: LayeringFlags {
        .init(idempotent: idempotent, dryRun: dryRun, allowKernel: allowKernel, lockFinalization: lockFinalization, refresh: refresh)
    }
}

struct Install: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Layer packages (names or .deb files) into a new deployment.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Argument(help: "Package names or paths to .deb files.") var packages: [String] = []
    func run() throws {
        let files = packages.map { $0.hasSuffix(".deb") ? URL(fileURLWithPath: $0).standardizedFileURL.path : $0 }
        let remote = RemoteCall(operation: "install", arguments: layering.arguments(packages: files))
        try execute(global, remote: remote) { try $0.install(packages, flags: layering.flags, token: $1) }
    }
}

struct Uninstall: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove layered packages into a new deployment.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Flag(name: .long, help: "Remove every layered package.") var all = false
    @Argument var packages: [String] = []
    func run() throws {
        try execute(global, remote: RemoteCall(operation: "uninstall", arguments: layering.arguments(packages: packages, all: all))) {
            try $0.uninstall(packages, all: all, flags: layering.flags, token: $1)
        }
    }
}

struct Override: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Remove base packages, or undo that.", subcommands: [Remove.self, Reset.self])

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove base packages in a new deployment.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var layering: LayeringOptions
        @Argument var packages: [String] = []
        func run() throws {
            try execute(global, remote: RemoteCall(operation: "override-remove", arguments: layering.arguments(packages: packages))) {
                try $0.overrideRemove(packages, flags: layering.flags, token: $1)
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Restore removed base packages.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var layering: LayeringOptions
        @Flag(name: .long, help: "Reset every override.") var all = false
        @Argument var packages: [String] = []
        func run() throws {
            let args = layering.arguments(packages: packages, all: all)
            try execute(global, remote: RemoteCall(operation: "override-reset", arguments: args)) {
                try $0.overrideReset(packages, all: all, flags: layering.flags, token: $1)
            }
        }
    }
}

struct Upgrade: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move to the newest base commit and re-apply the layering.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Flag(name: .long, help: "Only report whether anything would change (exit 77 when not).") var check = false
    func run() throws {
        var args = layering.arguments
        args["idempotent"] = nil
        if check { args["check"] = true }
        try execute(global, remote: RemoteCall(operation: "upgrade", arguments: args)) {
            try $0.upgrade(check: check, flags: layering.flags, token: $1)
        }
    }
}

struct Deploy: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Move the base to a VERSION or CHECKSUM of its ref, keeping the layering.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Argument(help: "A version string or a (prefix of a) commit checksum.") var target: String
    func run() throws {
        try execute(global, remote: RemoteCall(operation: "deploy", arguments: ["target": target])) {
            try $0.deploy(target, flags: layering.flags, token: $1)
        }
    }
}

struct Rebase: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Switch the base to another ref, keeping the layering.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var layering: LayeringOptions
    @Argument(help: "REF or REMOTE:REF.") var ref: String
    func run() throws {
        try execute(global, remote: RemoteCall(operation: "rebase", arguments: ["ref": ref])) {
            try $0.rebase(ref, flags: layering.flags, token: $1)
        }
    }
}
