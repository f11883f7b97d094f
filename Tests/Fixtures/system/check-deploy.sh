#!/bin/bash
# Checks the operator-facing monitoring files in deploy/: Prometheus configuration, alert rules and
# their unit tests (promtool), the Grafana dashboard (Grafana's JSON Schema, panel plugin schemas,
# layout, and every PromQL query parsed by promtool), and the OpenTelemetry Collector example.
#   bash Tests/Fixtures/system/check-deploy.sh        (from the repository root; needs promtool, and
#                                               python3 with PyYAML and jsonschema)
# Prints one line per check passed; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/../../.."

PROMTOOL=${PROMTOOL:-promtool}
command -v "$PROMTOOL" >/dev/null || { echo "FAIL: promtool not found (Debian: prometheus)" >&2; exit 1; }

PYTHON=
for candidate in .build/pytools/bin/python /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import yaml, jsonschema' 2>/dev/null; then
        PYTHON=$candidate
        break
    fi
done
[ -n "$PYTHON" ] || { echo "FAIL: no python3 with PyYAML and jsonschema (Debian: python3-yaml python3-jsonschema)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Runs a command quietly; on failure shows its output and stops.
run() {
    local what=$1
    shift
    if ! "$@" >"$TMP/out" 2>&1; then
        echo "FAIL: $what: $*" >&2
        cat "$TMP/out" >&2
        exit 1
    fi
    echo "ok: $what"
}

# Relative paths in prometheus.yml (rule_files, file_sd) resolve against its directory; the
# check includes the rule files and the file_sd target files.
run "promtool check config deploy/prometheus/prometheus.yml (with alerts.yml and targets/*.yml)" \
    "$PROMTOOL" check config deploy/prometheus/prometheus.yml
run "promtool check rules deploy/prometheus/alerts.yml" \
    "$PROMTOOL" check rules deploy/prometheus/alerts.yml
# rule_files in the test file resolve against its directory.
run "promtool test rules deploy/prometheus/alerts.test.yml" \
    "$PROMTOOL" test rules deploy/prometheus/alerts.test.yml
"$PYTHON" Tests/Fixtures/system/check-deploy.py alerts deploy/prometheus/alerts.yml deploy/prometheus/alerts.test.yml

"$PYTHON" Tests/Fixtures/system/check-deploy.py dashboard deploy/grafana/apt-layer-fleet.json Tests/Fixtures/data/grafana "$TMP/dashboard-queries.yml"
run "promtool parses every dashboard query (check rules on the extracted queries)" \
    "$PROMTOOL" check rules "$TMP/dashboard-queries.yml"

"$PYTHON" Tests/Fixtures/system/check-deploy.py otel deploy/otel-collector/config.yaml
