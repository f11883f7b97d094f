import Testing

extension Tag {
    /// In process: no root, no mounts, no network, no long-running subprocess. `make check`
    /// (`scripts/check.sh`) runs exactly the suites with this tag.
    @Tag public static var fast: Self

    /// Long synchronous work (many agents, mounts, disk images, schemathesis, process storms) that
    /// would starve the cooperative pool's two threads on two cores, or be starved by it:
    /// `scripts/test.sh` runs each such suite in a `swift test` of its own.
    @Tag public static var alone: Self
}
