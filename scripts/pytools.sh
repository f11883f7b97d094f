#!/bin/sh
# The telemetry tiers' Python tools (PyPI, pinned) in .build/pytools: the official OTLP protobuf
# definitions for the receiver that parses the agent's reports (the fleet mission's too), and
# mirrors-countme for deploy/countme. scripts/test.sh and scripts/vm-test.sh run this first.
set -eu
cd "$(dirname "$0")/.."
PT=.build/pytools
if ! "$PT/bin/python" -c 'import opentelemetry.proto, mirrors_countme' 2>/dev/null; then
  rm -rf "$PT"
  /usr/bin/python3 -m venv "$PT"
  "$PT/bin/pip" install -q "opentelemetry-proto==1.45.2" "mirrors-countme==0.1.5"
fi
