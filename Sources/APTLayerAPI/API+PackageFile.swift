import APTLayerEngine
import APTLayerModel
import Foundation

extension Components.Schemas.PackageFile {
    /// The API form of an uploaded .deb.
    public init(_ f: PackageUploads.File) {
        self.init(
            sha256: f.sha256, reference: f.reference, package: f.package, version: f.version, architecture: f.architecture, size: f.size,
            uploadedAt: f.uploadedAt)
    }
}
