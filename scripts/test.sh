#!/bin/sh
# Sets up and runs every test tier: system packages, build, `swift test`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
# schemathesis (PyPI; SchemathesisTests runs it against the agent) in a virtual environment of
# Debian's python3, pinned, under .build/ (not committed); only the tests need it.
ST_VERSION=4.32.5
ST=.build/schemathesis
if ! "$ST/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  rm -rf "$ST"
  /usr/bin/python3 -m venv "$ST"
  "$ST/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
# The telemetry tiers' Python tools (PyPI, pinned): the official OTLP protobuf definitions for the
# receiver that parses the agent's reports, and mirrors-countme for deploy/countme.
PT=.build/pytools
if ! "$PT/bin/python" -c 'import opentelemetry.proto, mirrors_countme' 2>/dev/null; then
  rm -rf "$PT"
  /usr/bin/python3 -m venv "$PT"
  "$PT/bin/pip" install -q "opentelemetry-proto==1.45.2" "mirrors-countme==0.1.5"
fi
# deploy/: promtool check config / check rules / test rules, the Grafana dashboard against Grafana's
# JSON schemas and every query through promtool, the collector example's structure.
bash Tests/Fixtures/check-deploy.sh
"$PT/bin/python" deploy/countme/test_apt_layer_countme.py
"$PT/bin/python" Tests/Fixtures/test_otlp_receiver.py
# The generated OpenAPI code is committed (a build never runs the generator); regenerating it from
# openapi/openapi.yaml must change nothing.
bash scripts/openapi-generate.sh --check
# Every hand-written Swift file is as scripts/format.sh (the committed .swift-format) leaves it.
sh scripts/format.sh --check
# The docs take the version from scripts/version.sh (APTLayerVersion.current); none spells one.
if grep -rnE 'apt-layer_[0-9]+\.[0-9]+' README.md docs; then echo "error: a doc spells a package version; use scripts/version.sh" >&2; exit 1; fi
export OSTREE_SYSROOT_DEBUG=mutable-deployments
swift build --build-tests
# Man pages and shell completions generated from the argument parser, as the .deb ships them.
bash Tests/Fixtures/test_cli_docs.sh .build/debug
# The two targets run one after the other: together, the synchronous tests that block Swift
# Testing's two pool threads (on two cores) starved the agent tests' async waits.
swift test --skip-build --filter APTLayerFleetTests
# The update driver's machine (table and property tests) and its loop against a real journal.
swift test --skip-build --filter APTLayerDriverTests
swift test --skip-build --filter APTLayerEngineTests --skip ComposeImageTests
# compose image mounts, formats and writes a disk image synchronously: alone, like the other
# long synchronous tiers, so the engine tests' polling of dpkg is not starved.
swift test --skip-build --filter ComposeImageTests
swift test --skip-build --filter APTLayerAgentTests --skip SchemathesisTests --skip TelemetryAgentTests --skip PrometheusTierTests \
  --skip CLIHabitsTests --skip ReliabilityTests --skip ReliabilitySmallerTests --skip EventChannelTests
# The reliability tier (issue 26) drives agents with floods, subscriber storms and 100
# transactions from synchronous tests, and stresses the event channel with hundreds of
# subscribers: alone, so it starves no async test and nothing starves it.
swift test --skip-build --filter ReliabilityTests
swift test --skip-build --filter "ReliabilitySmallerTests|EventChannelTests"
# The CLI habits suite runs many CLI processes from synchronous tests: alone, for the same reason.
swift test --skip-build --filter CLIHabitsTests
# The README's demo as a newcomer meets it: taken ports, Ctrl-C, an agent that cannot start.
python3 Tests/Fixtures/test_demo.py
# The telemetry tiers hold several agents, nginx, a receiver and Prometheus in long synchronous
# tests: alone, so they starve no async test's polling.
swift test --skip-build --filter "TelemetryAgentTests|PrometheusTierTests"
# schemathesis drives its own agent with two workers for 100 s: alone, so it starves nothing.
swift test --skip-build --filter SchemathesisTests
# The fleet tier: 20 agents in booted containers roll a new release through waves, a window and
# FleetLock slots, one canary rolls back; it exits 1 when any checked property fails.
python3 Tests/Fixtures/fleet-sim.py --bin .build/debug --hosts 20 --timeout 420 --check
# The VM tier: apt-layer's .deb in a bootable image, booted under qemu (TCG) through staging,
# reboots, rollback, finalization locking and an agent killed under systemd (docs/image.md).
sh scripts/vm-test.sh
