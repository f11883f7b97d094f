#!/bin/sh
# Benchmark and demonstration (not a test; the test tier runs the same simulation with --check):
# HOSTS agents (default 20), each on its own tmpfs sysroot in the booted-container harness, take a
# new base release from one signed policy through waves, a maintenance window and FleetLock reboot
# slots; one canary fails its health check and rolls back. Prints what it checked and a table:
# time from publishing the policy to the whole fleet on the release, slots, agent memory.
#   bench/fleet.sh [HOSTS]        (root; uses the debug build that `swift build` makes)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
[ -x .build/debug/apt-layerd ] && [ -x .build/debug/apt-layer ] || swift build >/dev/null
exec python3 Tests/Fixtures/system/fleet-sim.py --bin .build/debug --hosts "${1:-20}"
