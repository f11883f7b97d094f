import APTLayerAPI
import APTLayerEngine
import APTLayerModel
import ArgumentParser
import Foundation

struct Rollback: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "rollback", abstract: "Make the previous deployment the default (again to undo).")
    @OptionGroup var global: GlobalOptions
    func operation() -> HostOperation { .rollback }
}

struct Cleanup: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "cleanup", abstract: "Remove pending/rollback deployments and prune the repository.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Remove the pending deployment.") var pending = false
    @Flag(name: .shortAndLong, help: "Remove rollback deployments.") var rollback = false
    func operation() -> HostOperation { .cleanup(pending: pending, rollback: rollback) }
}

struct Pin: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "pin", abstract: "Keep a deployment from being garbage collected.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Deployment index, as `status` shows it.") var index: Int
    func operation() -> HostOperation { .pin(index: index) }
}

struct Unpin: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let a pinned deployment be garbage collected again.")
    @OptionGroup var global: GlobalOptions
    @Argument var index: Int
    func operation() -> HostOperation { .unpin(index: index) }
}

struct Kargs: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "kargs", abstract: "Show or edit kernel arguments (edits make a new deployment).")
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "Append KEY=VALUE.") var append: [String] = []
    @Option(name: .long, help: "Delete KEY=VALUE (or KEY).") var delete: [String] = []
    @Option(name: .long, help: "Replace KEY=VALUE=NEW (or KEY=NEW).") var replace: [String] = []
    func operation() -> HostOperation { .kargs(.init(append: append, delete: delete, replace: replace)) }
    func run() throws {
        if append.isEmpty && delete.isEmpty && replace.isEmpty {
            let service = global.service
            do { print(try blocking { try await service.kernelArguments() }) } catch { throw fail(oneLine(error)) }
            return
        }
        try TransactionRunner.run(operation(), global)
    }
}

struct Finalize: OperationCommand {
    static let configuration = CommandConfiguration(commandName: "finalize", abstract: "Unlock a staged deployment locked with --lock-finalization.")
    @OptionGroup var global: GlobalOptions
    func operation() -> HostOperation { .finalize }
}

struct ApplyLive: OperationCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-live",
        abstract: "Apply the pending deployment to the running system through a transient /usr overlay (until the next boot).",
        discussion: """
            Added packages only, unless --allow-replacement; kernel and module changes are always refused. /etc files the \
            admin has not edited follow the new deployment, edited ones are kept. The next boot boots the pending deployment \
            as it was staged.
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var live: LiveFlags
    @Flag(name: .long, help: "Go back to the booted deployment's /usr (undoes unedited /etc files the live applies wrote).")
    var reset = false
    func operation() -> HostOperation { .applyLive(reset: reset, options: live.options) }
}

/// The flags `apply-live` and `install --apply-live` share.
struct LiveFlags: ParsableArguments {
    @Flag(name: .long, help: "Allow removed and changed packages (and a changed base) to be applied live.")
    var allowReplacement = false
    @Flag(name: .customLong("start"), help: "Start the services the new packages enable.")
    var startServices = false
    var options: LiveOptions { .init(allowReplacement: allowReplacement, startServices: startServices) }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the state, the running transaction and the deployments in boot order.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .long, help: "Print the apt-layer.status/v2 JSON document.") var json = false
    @Flag(name: [.customShort("b"), .long], help: "Only the booted deployment.") var booted = false
    @Flag(name: .shortAndLong, help: "More detail: kernel arguments, ids, installed versions of layered packages.") var verbose = false
    func run() throws {
        var host: HostStatus
        var diff: PackageDiff?
        do {
            let (service, json) = (global.service, json)
            (host, diff) = try blocking { try await service.status(nextBootDiff: !json) }
        } catch { throw fail(oneLine(error)) }
        if booted { host.status.deployments = host.status.deployments.filter(\.booted) }
        if json {
            printJSON(host.document)
        } else {
            print(StatusPrinter.text(host, diff: diff, verbose: verbose), terminator: "")
        }
    }
}

struct DB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db", abstract: "Query deployments' package databases.", subcommands: [List.self, Diff.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the packages of a deployment.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Deployment index (default: booted, else default).") var deployment: Int?
        func run() throws {
            do {
                let (service, deployment) = (global.service, deployment)
                for p in try blocking({ try await service.packages(deployment: deployment) }) { print("\(p.name)\t\(p.version)\t\(p.architecture)") }
            } catch { throw fail(oneLine(error)) }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Packages upgraded/downgraded/removed/added between two commits.",
            discussion:
                "FROM and TO are deployment indices (as status shows them), (prefixes, 4 or more characters, of) deployment checksums, refs or commit checksums. FROM defaults to the booted deployment (else the rollback), TO to the default (pending) one."
        )
        @OptionGroup var global: GlobalOptions
        @Flag(name: .long, help: "Print JSON.") var json = false
        @Argument(help: "The older side.") var from: String?
        @Argument(help: "The newer side.") var to: String?
        func run() throws {
            let report: PackageDiffReport
            let (service, from, to) = (global.service, from, to)
            do { report = try blocking { try await service.packageDiff(from: from, to: to) } } catch { throw fail(oneLine(error)) }
            if json { return printJSON(Components.Schemas.PackageDiffReport(report)) }
            print(DiffPrinter.header(report) + (report.diff.isEmpty ? "No package changes.\n" : DiffPrinter.text(report.diff)), terminator: "")
        }
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Initialise an empty sysroot with one stateroot (tests, demos, images).")
    @OptionGroup var global: GlobalOptions
    func run() throws {
        try direct(global) { host in
            guard let os = global.osname else { throw EngineError(.invalidArgument, "init needs --os NAME") }
            try host.initialize(osname: os)
            print("Initialised \(host.options.sysroot) with stateroot \(os).")
        }
    }
}

struct Compose: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compose",
        abstract: "Build OSTree base commits and bootable disk images.", subcommands: [Rootfs.self, Tree.self, Image.self, OCI.self])

    struct Rootfs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rootfs", abstract: "Convert a Debian rootfs (in place) into a bootable commit on REF.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .long) var ref: String
        @Option(name: .long) var version: String?
        @Option(name: .long, help: "Repository (default: the sysroot's ostree/repo).") var repo: String?
        @Flag(name: .long, help: "Put a text stub where the kernel goes (test/demo trees).") var stubKernel = false
        @Argument var rootfs: String
        func run() throws {
            try direct(global) { host in
                let checksum = try host.composeRootfs(rootfs, repo: repo, options: .init(ref: ref, version: version, stubKernel: stubKernel))
                print("\(ref) => \(checksum)")
            }
        }
    }

    struct Image: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "image",
            abstract:
                "Write a bootable disk image (GPT; BIOS GRUB and/or a Secure Boot EFI partition; ext4 /boot and root) from a committed base with a kernel.",
            discussion:
                "The base needs a kernel with a dracut initramfs and ostree-boot, and for UEFI Debian's signed shim and GRUB (deploy/treefiles/bookworm-vm.yaml). Boot it with: qemu-system-x86_64 -m 2048 -drive file=IMAGE,format=raw,if=virtio -serial stdio (BIOS), or add OVMF's firmware (docs/image.md)."
        )
        @Option(name: .long, help: "Repository holding the base.") var repo: String
        @Option(name: .long, help: "The base's ref.") var ref: String
        @Option(name: .shortAndLong, help: "The image file to write.") var output: String
        @Option(name: .long, help: "raw or qcow2.") var format = "raw"
        @Option(name: .long, help: "bios, uefi or hybrid (both; the default).") var firmware = "hybrid"
        @Option(name: .long, help: "The stateroot (default: the base's os-release ID: debian, ubuntu).") var os: String?
        @Option(
            name: .long,
            help:
                "A kernel argument besides root=, rw and panic=10 rd.emergency=reboot rd.shell=0 systemd.crash_reboot=1 (repeatable; default: console=tty0 console=ttyS0,115200n8)."
        )
        var karg: [String] = []
        @Option(name: .long, help: "systemd's RuntimeWatchdogSec= in the image, seconds (0: none).") var watchdogSec = 30
        @Option(name: .long, help: "Free space on the root filesystem, MiB.") var freeMib = 1024
        @Option(name: .long, help: "A directory copied into the deployment's /etc (agent.yaml, certificates).") var etc: String?
        @Flag(name: .shortAndLong, help: "No progress output.") var quiet = false
        func run() throws {
            var options = ImageBuilder.Options(repo: repo, ref: ref, output: output)
            options.format = format
            guard let firmware = ImageBuilder.Firmware(rawValue: firmware) else {
                throw fail("--firmware must be bios, uefi or hybrid, not \(firmware)")
            }
            options.firmware = firmware
            options.osname = os
            if !karg.isEmpty { options.kernelArguments = karg }
            options.runtimeWatchdogSeconds = watchdogSec > 0 ? watchdogSec : nil
            options.freeMiB = freeMib
            options.etcOverlay = etc
            // The image's sysroot lives on the builder's own tmpfs, which cannot take immutable bits.
            setenv("OSTREE_SYSROOT_DEBUG", "mutable-deployments", 1)
            let token = CancellationToken()
            SignalCancellation.onSignal { token.cancel() }
            do {
                let progress: any ProgressSink = quiet ? SilentProgress() : TerminalProgress()
                let built = try ImageBuilder(options: options, progress: progress).build(token: token)
                print("Wrote \(built.output) (\(built.bytes / 1_048_576) MiB): \(ref) \(built.checksum.prefix(12)), root UUID \(built.rootUUID)")
            } catch {
                throw fail(oneLine(error))
            }
        }
    }

    struct OCI: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "oci",
            abstract: "Write a base commit as an OCI image: to oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REGISTRY/NAME:TAG.",
            discussion:
                "Layers are split by dpkg package (an update to one package changes its layer), deterministic, and carry the commit object, so `apt-layer rebase ostree-unverified-registry:REGISTRY/NAME:TAG` rebuilds the exact commit. Registry access (registries.conf, auth.json, certs.d) is skopeo's."
        )
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "Repository holding the base (default: the sysroot's ostree/repo).") var repo: String?
        @Option(name: .long, help: "The base's ref or commit.") var ref: String
        @Option(name: .long, help: "An earlier image of this base: packages keep the layers they had there.") var previous: String?
        @Option(name: .long, help: "At most this many layers (12 to 127).") var maxLayers = 64
        @Argument(help: "Where to write the image.") var destination: String
        func run() throws {
            let token = CancellationToken()
            SignalCancellation.onSignal { token.cancel() }
            try direct(global) { host in
                let made = try host.composeImage(
                    ref: ref, repo: repo, destination: destination, previous: previous, maxLayers: maxLayers, token: token)
                print("\(destination) => \(made.digest) (commit \(made.commit), \(made.layers) layers)")
            }
        }
    }

    struct Tree: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tree", abstract: "Compose a base from a YAML treefile with mmdebstrap.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .long, help: "Repository (default: the sysroot's ostree/repo).") var repo: String?
        @Argument var treefile: String
        func run() throws {
            let token = CancellationToken()
            SignalCancellation.onSignal { token.cancel() }
            try direct(global) { host in
                let checksum = try host.composeTree(treefile, repo: repo, token: token)
                print("Committed \(checksum)")
            }
        }
    }
}
