/// apt-layer's version: what `apt-layer --version`, `apt-layerd --version`, the agent's status
/// document and its metrics report.
public enum APTLayerVersion {
    /// The release, `MAJOR.MINOR.PATCH`.
    public static let current = "0.4.0"
}
