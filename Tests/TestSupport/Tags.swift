import Glibc
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

extension Trait where Self == ConditionTrait {
    /// Runs only as root (tmpfs sysroots, bubblewrap, agents on real sockets, systemd units);
    /// elsewhere the suite is skipped, and says why, instead of failing. `make check` runs the
    /// suites that need none of it.
    public static var asRoot: Self {
        .enabled(if: geteuid() == 0, "needs root (tmpfs sysroots, bubblewrap, agents, systemd); make check runs the in-process tier")
    }
}
