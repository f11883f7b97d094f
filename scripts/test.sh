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
# The telemetry tiers' Python tools (PyPI, pinned): OTLP protobuf definitions, mirrors-countme.
PT=.build/pytools
sh scripts/pytools.sh
# deploy/: promtool check config / check rules / test rules, the Grafana dashboard against Grafana's
# JSON schemas and every query through promtool, the collector example's structure.
bash Tests/Fixtures/system/check-deploy.sh
"$PT/bin/python" deploy/countme/test_apt_layer_countme.py
"$PT/bin/python" Tests/Fixtures/system/test_otlp_receiver.py
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
bash Tests/Fixtures/system/test_cli_docs.sh .build/debug
# apt-layer's .deb, built once and in release mode, as users get it (about 6 min cold on 2 cores, with the
# link-order profile): the
# realistic tier resolves it against Debian 12, Debian 13 and Ubuntu 24.04, the VM tier installs it
# into each image it boots.
t0=$(date +%s)
APT_LAYER_DEB=$(sh scripts/build-deb.sh "$(pwd)/.build/deb")
echo "== $(basename "$APT_LAYER_DEB") built in $(( $(date +%s) - t0 )) s; lintian:"
lintian --tag-display-limit 0 "$APT_LAYER_DEB" 2>&1 | grep -v 'root privileges' || true
export APT_LAYER_DEB APT_LAYER_TEST_DEB="$APT_LAYER_DEB"
# The `.fast` suites first (make check, seconds); then every other suite in one run. Those block
# (mounts, apt, engine calls, agents' subprocesses) and carry `.offPool`, which runs each test case
# on a thread of its own, at most OffPoolTrait.width at once, so none starves the cooperative pool
# the agent tests' awaits need (docs/testing.md). A suite that needs root without it fails here.
fast=$(sh scripts/suites.sh fast)
[ -n "$fast" ] || { echo "error: no suite tagged .fast" >&2; exit 1; }
if grep -n '@Suite(.*\.asRoot' Tests/*/*.swift | grep -v '\.offPool'; then
  echo "error: a suite that needs root blocks; give it .offPool (Tests/TestSupport/OffPool.swift)" >&2; exit 1
fi
swift test --skip-build --filter "\.($(echo $fast | tr ' ' '|'))(/|$)"
swift test --skip-build --skip "\.($(echo $fast | tr ' ' '|'))(/|$)"
# The README's demo as a newcomer meets it: taken ports, Ctrl-C, an agent that cannot start.
python3 Tests/Fixtures/system/test_demo.py
# The fleet tier: 20 agents in booted containers roll a new release through waves, a window and
# FleetLock slots, one canary rolls back; it exits 1 when any checked property fails.
python3 Tests/Fixtures/system/fleet-sim.py --bin .build/debug --hosts 20 --timeout 420 --check
# The VM tier: apt-layer's .deb in bootable Debian 12 and Ubuntu 24.04 images, booted under qemu (TCG) through staging,
# reboots, rollback, finalization locking and an agent killed under systemd (docs/image.md).
sh scripts/vm-test.sh
