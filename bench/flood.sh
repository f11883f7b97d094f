#!/bin/bash
# Benchmark (not a test) of apt-layerd under a pre-authentication connection flood from one
# address (issue 26, finding 6), in one run on this machine: an authorised mTLS client on
# 127.0.0.1 asks GET /v1/status REQUESTS times (default 40, 0.25 s apart), each on a new
# connection, while bench's flooder (Tests/Fixtures/harness/flood.py) holds 1,100 connections from
# 127.0.0.2 and reopens each one the agent closes. Three agent configurations:
#   baseline:   no flood;
#   unlimited:  the flood, with the per-peer limit off and the old 10 s pre-auth budget
#               (max-connections-per-peer: 100000, pre-auth-timeout-seconds: 10) — how the
#               agent behaved before the limit;
#   per-peer:   the flood, with the defaults (32 per peer, 3 s pre-auth budget).
# Prints one table: served, p50, p99, max of the authorised requests' time, and how many flood
# connections the agent closed at accept. Uses the debug build (swift build) unless RELEASE=1.
# Run as root:  bench/flood.sh [REQUESTS]
set -euo pipefail
REQUESTS=${1:-40}
here=$(cd "$(dirname "$0")/.." && pwd)
config=debug; [ "${RELEASE:-0}" = 1 ] && config=release
(cd "$here" && swift build -c $config --product apt-layerd >/dev/null && swift build -c $config --product apt-layer >/dev/null)
bin=$here/.build/$config
export OSTREE_SYSROOT_DEBUG=mutable-deployments
work=$(mktemp -d /tmp/apt-layerd-flood.XXXXXX)
mount -t tmpfs -o size=1G tmpfs "$work"
agent=""; flood=""
cleanup() {
  if [ -n "$flood" ]; then kill "$flood" 2>/dev/null || true; fi
  if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  sleep 0.3; umount -l "$work"; rmdir "$work"
}
trap cleanup EXIT
S=$work/sysroot
"$here/Tests/Fixtures/builders/make-debs.sh" "$work/fx" >/dev/null
"$here/Tests/Fixtures/builders/make-rootfs.sh" "$work/rootfs" "$work/fx/debs" "$work/fx/repo" bench
"$bin/apt-layer" init -q --sysroot "$S" --os debian >/dev/null
"$bin/apt-layer" compose rootfs -q --sysroot "$S" --ref bench/base --version 1 --stub-kernel "$work/rootfs" >/dev/null
"$bin/apt-layer" rebase -q --sysroot "$S" bench/base >/dev/null
"$here/scripts/make-test-pki.sh" "$work/pki" >/dev/null
C="curl -sS -o /dev/null --max-time 30 --cacert $work/pki/ca.crt --cert $work/pki/reader.crt --key $work/pki/reader.key"

run() { # NAME FLOOD(0|1) EXTRA-YAML
  cat > "$work/agent.yaml" <<YAML
listen: "127.0.0.1:17443"
metrics-listen: "127.0.0.1:17478"
tls: { certificate: $work/pki/server.crt, key: $work/pki/server.key, client-ca: $work/pki/ca.crt }
roles: { reader: reader }
sysroot: $S
os: debian
state-directory: $work/state
socket: ""
$3
YAML
  "$bin/apt-layerd" --config "$work/agent.yaml" --drop-in "$work/none" >"$work/agent-$1.log" 2>&1 & agent=$!
  for _ in $(seq 100); do $C https://127.0.0.1:17443/v1/status 2>/dev/null && break; sleep 0.1; done
  if [ "$2" = 1 ]; then
    python3 "$here/Tests/Fixtures/harness/flood.py" 127.0.0.2 17443 1100 $((REQUESTS + 120)) & flood=$!
    sleep 3
  fi
  : > "$work/times"
  for _ in $(seq "$REQUESTS"); do
    $C -w "%{http_code} %{time_total}\n" https://127.0.0.1:17443/v1/status >> "$work/times" 2>/dev/null || true  # a failure still writes its 000 line
    sleep 0.25
  done
  refused=$(curl -s http://127.0.0.1:17478/metrics | awk '/^apt_layer_connections_peer_refused_total/ {print $2}')
  if [ -n "$flood" ]; then kill "$flood" 2>/dev/null || true; wait "$flood" 2>/dev/null || true; flood=""; fi
  kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; agent=""
  rm -rf "$work/state"
  python3 - "$1" "$work/times" "${refused:-0}" <<'PY'
import sys
name, path, refused = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [line.split() for line in open(path) if line.strip()]
ok = sorted(float(t) * 1000 for code, t in rows if code == "200")
def pct(p):
    return ok[min(len(ok) - 1, int(round(p / 100 * (len(ok) - 1))))] if ok else float("nan")
print(f"| {name:<10} | {len(ok):>3}/{len(rows):<3} | {pct(50):>8.1f} | {pct(99):>8.1f} | {max(ok) if ok else float('nan'):>8.1f} | {refused:>8} |")
PY
}

echo "| agent      | served  | p50 (ms) | p99 (ms) | max (ms) | refused at accept |"
echo "|------------|---------|----------|----------|----------|-------------------|"
run baseline 0 ""
run unlimited 1 "max-connections-per-peer: 100000
pre-auth-timeout-seconds: 10"
run per-peer 1 ""
