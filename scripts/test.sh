#!/bin/sh
# Sets up and runs every test tier: system packages, build, `swift test`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
export OSTREE_SYSROOT_DEBUG=mutable-deployments
swift build --build-tests
# The two targets run one after the other: together, the synchronous tests that block Swift
# Testing's two pool threads (on two cores) starved the agent tests' async waits.
swift test --skip-build --filter APTLayerFleetTests
swift test --skip-build --filter APTLayerEngineTests
swift test --skip-build --filter APTLayerAgentTests --skip SchemathesisTests
# schemathesis drives its own agent with two workers for 100 s: alone, so it starves nothing.
swift test --skip-build --filter SchemathesisTests
