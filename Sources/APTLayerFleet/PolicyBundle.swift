import APTLayerModel
import Foundation

/// An offline bundle (docs/images.md): one file that is an OCI archive (a tar of an OCI image
/// layout holding the images the policy's releases pin, each under its digest's hex as the name)
/// with the signed policy and its detached signature beside the layout, at ``policyPath`` and
/// ``signaturePath``. `apt-layer bundle create` writes it; the agent reads the policy with this
/// type and hands the archive to the engine (`ostree-unverified-image:oci-archive:FILE:NAME@sha256:…`).
public enum PolicyBundle {
    /// Where the policy lies in the bundle.
    public static let policyPath = "apt-layer/policy.yaml"
    /// Where its detached signature lies.
    public static let signaturePath = "apt-layer/policy.yaml.sig"
    /// The file name ending the agent picks up in a bundle directory.
    public static let suffix = ".bundle"

    /// Why a bundle could not be read.
    public struct ReadError: Error, CustomStringConvertible, Equatable {
        /// One line naming the bundle and what is wrong with it.
        public let description: String
    }

    /// Reads the policy and signature out of a bundle without reading the images: the tar headers
    /// are walked with seeks (``TarArchive``). Refuses a file that is not a tar or lacks either member.
    public static func read(_ path: String) throws(ReadError) -> (policy: Data, signature: String) {
        let archive: TarArchive
        do { archive = try TarArchive(path: path, until: [policyPath, signaturePath]) } catch {
            throw ReadError(
                description: error.description.hasPrefix("cannot open") ? "cannot open bundle \(path)" : "\(path) is not a bundle (not a tar archive)"
            )
        }
        guard archive.members[policyPath] != nil, archive.members[signaturePath] != nil else {
            throw ReadError(description: "\(path) is not an apt-layer bundle: no \(policyPath) and \(signaturePath)")
        }
        do {
            let policy = try archive.read(policyPath, limit: 1 << 20)
            let signature = try archive.read(signaturePath, limit: 1 << 20)
            return (policy, String(decoding: signature, as: UTF8.self))
        } catch {
            throw ReadError(description: error.description)
        }
    }
}
