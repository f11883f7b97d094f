import APTLayerEngine
import APTLayerFleet
import APTLayerModel
import ArgumentParser
import Foundation

/// `apt-layer bundle`: one file that carries a signed fleet policy and the images its releases
/// pin, for sites without a route to the registry (docs/images.md).
struct Bundle: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Carry a signed fleet policy and its release images to an offline site in one file.",
        subcommands: [Create.self, Apply.self]
    )

    /// `apt-layer bundle create --policy P --signature S OUTPUT`.
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Write a bundle: the images the policy's releases pin (image: docker://...@sha256:...), the policy and its signature.",
            discussion:
                "The file is an OCI archive (skopeo and apt-layer read it as oci-archive:FILE:DIGEST-HEX) with apt-layer/policy.yaml and its .sig beside the layout."
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "The signed policy (YAML), exactly as served.") var policy: String
        @Option(help: "Its detached signature(s).") var signature: String
        @Option(help: "Only this stream's release (default: every stream's).") var stream: String?
        @Argument(help: "The bundle file to write (NAME.bundle).") var output: String

        func run() throws {
            let token = CancellationToken()
            SignalCancellation.onSignal { token.cancel() }
            let bytes: Data
            let sig: Data
            let decoded: FleetPolicy
            do {
                bytes = try Data(contentsOf: URL(fileURLWithPath: policy))
                sig = try Data(contentsOf: URL(fileURLWithPath: signature))
                decoded = try FleetPolicy.decode(bytes)
            } catch {
                throw fail("\(policy): \(oneLine(error))")
            }
            let streams = decoded.streams.filter { stream == nil || $0.key == stream }.sorted { $0.key < $1.key }
            guard !streams.isEmpty else { throw fail("the policy has no stream \(stream ?? "")") }
            var images: [String] = []
            for (name, s) in streams {
                guard let release = s.release else { continue }
                guard let image = release.image else {
                    throw fail("stream \(name): release \(release.id) names no image:; a bundle carries releases published as images")
                }
                if !images.contains(image) { images.append(image) }
            }
            guard !images.isEmpty else { throw fail("the policy pins no release") }
            try direct(global) { host in
                try host.writeBundle(
                    images: images, files: [(PolicyBundle.policyPath, Array(bytes)), (PolicyBundle.signaturePath, Array(sig))],
                    output: output, token: token)
                print("Wrote \(output): policy \(decoded.fleet) version \(decoded.version), \(images.count) image(s)")
            }
        }
    }

    /// `apt-layer bundle apply FILE`: verifies the bundle's policy against this host's signers and
    /// queues it for the agent, which stages the release as its waves, windows and health checks allow.
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply",
            abstract: "Verify a bundle against this host's policy signers and hand it to the agent (fleet.bundles).",
            discussion:
                "The agent accepts the bundle's policy as it would a fetched one and stages the release from the bundle, honouring waves, windows, FleetLock and health checks. A USB stick can instead be mounted on the fleet.bundles directory."
        )
        @Argument(help: "The bundle file.") var file: String
        @Option(help: "The agent's bundle directory (agent.yaml fleet.bundles).") var directory = "/var/lib/apt-layer/bundles"
        @Option(help: "OpenSSH allowed_signers of the keys trusted to sign policies.") var signers = "/etc/apt-layer/policy-signers"
        @Option(help: "Distinct trusted keys required.") var threshold = 1

        func run() throws {
            let accepted: AcceptedPolicy
            do {
                let contents = try PolicyBundle.read(file)
                let allowed = try AllowedSigners(String(decoding: try Data(contentsOf: URL(fileURLWithPath: signers)), as: UTF8.self))
                accepted = try PolicyTrust(signers: allowed, threshold: threshold, fleet: nil).accept(
                    contents.policy, signature: contents.signature, last: nil)
            } catch {
                throw fail("\(file): \(oneLine(error))")
            }
            let name = ((file as NSString).lastPathComponent as NSString).deletingPathExtension + PolicyBundle.suffix
            let target = "\(directory)/\(name)"
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let partial = "\(directory)/.\(name).partial"
                try? FileManager.default.removeItem(atPath: partial)
                try FileManager.default.copyItem(atPath: file, toPath: partial)
                // rename(2) replaces an earlier bundle of the same name at once.
                guard rename(partial, target) == 0 else {
                    throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(errno))])
                }
            } catch {
                throw fail("cannot queue \(file) in \(directory): \(oneLine(error))")
            }
            let p = accepted.policy
            let releases = p.streams.sorted { $0.key < $1.key }.compactMap { name, s in
                s.release.map { "\(name): \($0.id) (\($0.commit.prefix(12)))" }
            }
            print(
                "Queued \(target): policy \(p.fleet) version \(p.version), signed by \(accepted.signers.joined(separator: ", ")); \(releases.joined(separator: ", "))"
            )
            print("The agent stages it as the policy's waves, windows and health checks allow (apt-layer fleet status).")
        }
    }
}
