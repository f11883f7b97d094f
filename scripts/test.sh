#!/bin/sh
# Sets up and runs every test tier: system packages, build, `swift test`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
export OSTREE_SYSROOT_DEBUG=mutable-deployments
swift build --build-tests
swift test
