import Glibc
import Testing

extension Tag {
    /// In process: no root, no mounts, no network, no long-running subprocess. `make check`
    /// (`scripts/check.sh`) runs exactly the suites with this tag.
    @Tag public static var fast: Self
}

extension Trait where Self == ConditionTrait {
    /// Runs only as root (tmpfs sysroots, bubblewrap, agents on real sockets, systemd units);
    /// elsewhere the suite is skipped, and says why, instead of failing. `make check` runs the
    /// suites that need none of it. Such suites block (mounts, apt, engine calls, subprocesses), so
    /// they also carry ``OffPoolTrait`` (`.offPool`); `scripts/test.sh` checks that they do.
    public static var asRoot: Self {
        .enabled(if: geteuid() == 0, "needs root (tmpfs sysroots, bubblewrap, agents, systemd); make check runs the in-process tier")
    }
}
