#!/bin/sh
# Writes an lld --symbol-ordering-file for the release program: the functions it runs while the CLI
# starts, reads a sysroot and fails the usual ways, and while the agent starts and serves status,
# transactions and metrics, in address order. Linked first, those functions share pages,
# so the pages a process touches (and the 64 KB the kernel maps around each fault) hold code it
# uses: bench/footprint.sh measures the effect. The program must be unstripped and compiled with
# function sections (scripts/build-deb.sh does both), or the order can only move whole modules.
#   scripts/link-order.sh PROGRAM OUTPUT
# Runs as any user: a scratch sysroot, a test PKI and the agent on a loopback port, all in a
# temporary directory that is removed. The profile is a record, not a measurement: touch.c
# (LD_PRELOAD) protects the program's code and notes every page on its first execution.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
program=$(readlink -f "$1")
out=$2
w=$(mktemp -d /tmp/apt-layer-link-order.XXXXXX)
agent=""
cleanup() {
  [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
  rm -rf "$w"
}
trap cleanup EXIT INT TERM

"${CC:-clang}" -shared -fPIC -O2 -o "$w/touch.so" "$here/scripts/linkorder/touch.c"
mkdir -p "$w/bin" "$w/touched" "$w/empty"
ln -s "$program" "$w/bin/apt-layer"
ln -s apt-layer "$w/bin/apt-layerd"
sh "$here/scripts/make-test-pki.sh" "$w/pki" >/dev/null 2>&1
S=$w/sysroot
export SWIFT_BACKTRACE=enable=no APT_LAYER_TOUCHED_DIR="$w/touched" APT_LAYER_TOUCHED_PROGRAM="$program"
traced() { LD_PRELOAD=$w/touch.so "$@"; }

# The CLI: help, its usual refusals, and a sysroot read through libostree.
traced "$w/bin/apt-layer" --help >/dev/null
traced "$w/bin/apt-layer" status --help >/dev/null
traced "$w/bin/apt-layer" status --sysroot "$w/empty" >/dev/null 2>&1 || true
traced "$w/bin/apt-layer" install --sysroot "$w/empty" no-such-package >/dev/null 2>&1 || true
traced "$w/bin/apt-layer" init -q --sysroot "$S" --os debian >/dev/null 2>&1 || true
for verb in status "status --json" "rollback --local" "history --local" "db list"; do
  # shellcheck disable=SC2086
  traced "$w/bin/apt-layer" $verb --sysroot "$S" >/dev/null 2>&1 || true
done

# The agent: start, then status (through libostree), transactions and metrics.
cat > "$w/agent.yaml" <<YAML
listen: "127.0.0.1:0"
tls: { certificate: $w/pki/server.crt, key: $w/pki/server.key, client-ca: $w/pki/ca.crt }
roles: { reader: reader, operator: operator }
sysroot: $S
os: debian
state-directory: $w/state
socket: $w/agent.sock
metrics-listen: "127.0.0.1:0"
YAML
# Not through `traced`: a function run with & is a subshell, and $! would be its pid, not the agent's.
LD_PRELOAD=$w/touch.so "$w/bin/apt-layerd" --config "$w/agent.yaml" --drop-in "$w/empty" >"$w/agent.log" 2>&1 &
agent=$!
i=0
while [ ! -S "$w/agent.sock" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
port=$(sed -n 's/.*API (mTLS) listening on .*:\([0-9][0-9]*\)$/\1/p' "$w/agent.log" | head -1)
mport=$(sed -n 's/.*metrics listening on .*:\([0-9][0-9]*\)$/\1/p' "$w/agent.log" | head -1)
curl_tls() { curl -sS -o /dev/null --cacert "$w/pki/ca.crt" --cert "$w/pki/reader.crt" --key "$w/pki/reader.key" "https://127.0.0.1:$port$1" || true; }
for _ in 1 2 3 4 5; do
  [ -n "$port" ] && curl_tls /v1/status && curl_tls /v1/transactions
  [ -n "$mport" ] && curl -sS -o /dev/null "http://127.0.0.1:$mport/metrics"
  curl -sS -o /dev/null --unix-socket "$w/agent.sock" http://localhost/v1/status || true
done
kill -USR2 "$agent"   # touch.c writes its record now (and renames it into place when complete)
i=0
while [ ! -e "$w/touched/touched.$agent" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill "$agent"
wait "$agent" 2>/dev/null || true
agent=""

python3 "$here/scripts/linkorder/order.py" "$program" "$out" "$w"/touched/touched.* >&2
