/// Paths and names that the base contract and the layering engine agree on.
public enum Layout {
    /// Where the dpkg database lives inside an image (`/var/lib/dpkg` links here).
    public static let dpkgDatabase = "usr/share/dpkg/database"
    /// Where the debconf cache lives inside an image (`/var/cache/debconf` links here).
    public static let debconfCache = "usr/share/debconf/cache"
    /// A copy of the image's /var, used to seed a scratch /var while layering.
    public static let factoryVar = "usr/share/factory/var"
    /// The tmpfiles.d snippet that recreates the base image's /var.
    public static let baseTmpfiles = "usr/lib/tmpfiles.d/apt-layer-base.conf"
    /// The tmpfiles.d snippet generated for directories that layered packages create under /var.
    public static let autovarTmpfiles = "usr/lib/tmpfiles.d/apt-layer-autovar.conf"
    /// Engine state inside a sysroot (local .debs, apt cache, lock info).
    public static let stateDirectory = "ostree/apt-layer"
    /// Prefix of the refs that keep base commits alive.
    public static let baseRefPrefix = "apt-layer/base"
    /// Prefix of temporary trees under the repository's `tmp/`.
    public static let temporaryPrefix = "apt-layer-"

    /// Commit metadata keys.
    public enum Key {
        public static let clientLayer = "apt-layer.clientlayer"
        public static let packages = "apt-layer.packages"
        public static let localPackages = "apt-layer.local-packages"
        public static let removedBasePackages = "apt-layer.removed-base-packages"
        public static let packageList = "apt-layer.pkglist"
        public static let inputsSHA256 = "apt-layer.inputs-sha256"
        public static let version = "version"
        public static let bootable = "ostree.bootable"
        public static let linux = "ostree.linux"
    }
}
