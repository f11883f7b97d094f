import Testing

extension Tag {
    /// In process: no root, no mounts, no network, no long-running subprocess. `make check`
    /// (`scripts/check.sh`) runs exactly the suites with this tag.
    @Tag public static var fast: Self
}
