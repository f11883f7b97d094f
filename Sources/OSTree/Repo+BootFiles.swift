import COSTree

extension Repo {
    /// The kernel and initramfs libostree copies into `/boot` when it writes a deployment of a
    /// commit (`usr/lib/modules/VERSION/vmlinuz` and `initramfs.img`).
    public struct BootFiles: Equatable, Sendable {
        /// One file: its content checksum in the repository and its size in bytes.
        public struct File: Equatable, Sendable {
            public var checksum: String
            public var size: UInt64
        }

        /// The `usr/lib/modules` directory the kernel is in.
        public var version: String
        public var kernel: File
        public var initramfs: File?

        /// What they take in `/boot`.
        public var bytes: UInt64 { kernel.size + (initramfs?.size ?? 0) }

        /// The same kernel and initramfs (libostree then reuses the boot directory it has).
        public func sameContent(as other: BootFiles) -> Bool {
            kernel.checksum == other.kernel.checksum && initramfs?.checksum == other.initramfs?.checksum
        }
    }

    /// The boot files of commit `rev`, from the repository's metadata (nothing is read); nil when
    /// the tree has no kernel in `usr/lib/modules`.
    public func bootFiles(in rev: String) throws -> BootFiles? {
        var version: UnsafeMutablePointer<CChar>?
        var kernel: UnsafeMutablePointer<CChar>?
        var initramfs: UnsafeMutablePointer<CChar>?
        var kernelSize: guint64 = 0
        var initramfsSize: guint64 = 0
        try gCheck("find the kernel in \(rev.prefix(12))") {
            aptl_boot_files(raw, rev, &version, &kernel, &kernelSize, &initramfs, &initramfsSize, nil, $0)
        }
        let (versionName, kernelChecksum, initramfsChecksum) = (takeString(version), takeString(kernel), takeString(initramfs))
        guard let versionName, let kernelChecksum else { return nil }
        return BootFiles(
            version: versionName, kernel: .init(checksum: kernelChecksum, size: UInt64(kernelSize)),
            initramfs: initramfsChecksum.map { .init(checksum: $0, size: UInt64(initramfsSize)) })
    }
}
