#!/bin/bash
# The main job out of the box: apt-layerd on an embedded demo sysroot, with mutual TLS on localhost.
# Builds a small base here (busybox + a dpkg database) and a local flat apt repository of tiny
# packages, composes and deploys the base on a tmpfs sysroot, makes a throwaway CA with server and
# client certificates, starts the agent, runs one layering transaction through the API while you
# watch its event stream, and prints ready-to-paste curl and apt-layer commands. Ctrl-C stops the
# agent and removes everything but the agent's log (kept in /var/tmp/apt-layer-demo/).
# Ports: APT_LAYER_DEMO_PORT (API, default 7443) and APT_LAYER_DEMO_METRICS_PORT (default 9478); a
# port that is taken is replaced by a free one, and the demo says so. APT_LAYER_DEMO_AGENT_ARGS adds
# apt-layerd options.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sh "$here/scripts/deps.sh"
(cd "$here" && swift build)
bin=$here/.build/debug
export OSTREE_SYSROOT_DEBUG=mutable-deployments
demo=$(mktemp -d /tmp/apt-layer-demo.XXXXXX)
mount -t tmpfs -o size=1G tmpfs "$demo"
agent_pid=
logs=/var/tmp/apt-layer-demo
mkdir -p "$logs"
log=$logs/agent-$(date +%Y%m%d-%H%M%S).log
# Runs on every exit, error or not: nothing in it may stop it (no set -e here).
cleanup() {
  local status=$?
  # A second Ctrl-C (or a signal forwarded by a wrapper) must not cut the cleanup short.
  trap - EXIT
  trap '' INT TERM
  set +e
  if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null; fi
  [ -f "$demo/agent.log" ] && cp "$demo/agent.log" "$log"
  cd /
  umount "$demo" 2>/dev/null || umount -l "$demo" 2>/dev/null
  rmdir "$demo" 2>/dev/null
  echo
  echo "Agent stopped; demo sysroot removed.${agent_pid:+ Agent log: $log}"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
S=$demo/sysroot
# A port that is free now: the one asked for, else one the kernel picks.
free_port() {
  python3 - "$1" <<'PY'
import socket, sys
want = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", want))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}
port=$(free_port "${APT_LAYER_DEMO_PORT:-7443}")
metrics_port=$(free_port "${APT_LAYER_DEMO_METRICS_PORT:-9478}")
[ "$port" = "${APT_LAYER_DEMO_PORT:-7443}" ] || echo "Port ${APT_LAYER_DEMO_PORT:-7443} is taken; the API uses $port."
[ "$metrics_port" = "${APT_LAYER_DEMO_METRICS_PORT:-9478}" ] || echo "Port ${APT_LAYER_DEMO_METRICS_PORT:-9478} is taken; metrics use $metrics_port."
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

say "Building a small base image and a local apt repository"
"$here/Tests/Fixtures/builders/make-debs.sh" "$demo/fixtures" >/dev/null
"$here/Tests/Fixtures/builders/make-rootfs.sh" "$demo/rootfs" "$demo/fixtures/debs" "$demo/fixtures/repo" demo
run "$bin/apt-layer" init --sysroot "$S" --os debian
run "$bin/apt-layer" compose rootfs -q --sysroot "$S" --ref demo/base --version 1.0 --stub-kernel "$demo/rootfs"
run "$bin/apt-layer" rebase -q --sysroot "$S" demo/base

say "Making a demo CA, a server certificate and client certificates (reader, operator, admin)"
"$here/scripts/make-test-pki.sh" "$demo/pki"
cat > "$demo/agent.yaml" <<YAML
listen: "127.0.0.1:$port"
metrics-listen: "127.0.0.1:$metrics_port"
tls: { certificate: $demo/pki/server.crt, key: $demo/pki/server.key, client-ca: $demo/pki/ca.crt }
roles: { reader: reader, operator: operator, admin: admin }
sysroot: $S
os: debian
state-directory: $demo/state
socket: $demo/agent.sock
YAML

say "Starting apt-layerd (mTLS on 127.0.0.1:$port, metrics on 127.0.0.1:$metrics_port)"
# APT_LAYER_DEMO_AGENT_ARGS: more apt-layerd options (say --transaction-timeout 60).
# shellcheck disable=SC2086
"$bin/apt-layerd" --config "$demo/agent.yaml" --drop-in "$demo/agent.d" ${APT_LAYER_DEMO_AGENT_ARGS:-} > "$demo/agent.log" 2>&1 &
agent_pid=$!
up=
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$metrics_port/v1/healthz" >/dev/null; then up=1; break; fi
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "error: apt-layerd did not start; its log:" >&2
  sed 's/^/  /' "$demo/agent.log" >&2
  exit 1
fi
grep -E "listening|ready" "$demo/agent.log" | sed 's/^/  /'

C="curl -sS --cacert $demo/pki/ca.crt"
OP="$C --cert $demo/pki/operator.crt --key $demo/pki/operator.key"
RD="$C --cert $demo/pki/reader.crt --key $demo/pki/reader.key"
say "A layering transaction through the API (operator certificate)"
printf '\033[2m$ %s\033[0m\n' "curl ... -X POST https://127.0.0.1:$port/v1/transactions -d '{\"operation\":\"install\",\"arguments\":{\"packages\":[\"fixture-app\",\"fixture-user\"]}}'"
reply=$($OP -X POST -H 'content-type: application/json' \
  -d '{"operation":"install","arguments":{"packages":["fixture-app","fixture-user"]}}' https://127.0.0.1:$port/v1/transactions)
echo "$reply"
id=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
say "Its event stream (Server-Sent Events)"
$RD -N "https://127.0.0.1:$port/v1/transactions/$id/events"
say "The same host through the CLI (over the agent's local socket)"
run "$bin/apt-layer" status --agent "unix:$demo/agent.sock"
run "$bin/apt-layer" history --agent "unix:$demo/agent.sock"
say "A reader may not start transactions"
$RD -X POST -H 'content-type: application/json' -d '{"operation":"rollback"}' https://127.0.0.1:$port/v1/transactions; echo

cat <<MSG

The agent keeps running until you press Ctrl-C. Try, in another terminal (as root):
  $RD https://127.0.0.1:$port/v1/status
  $RD 'https://127.0.0.1:$port/v1/transactions?limit=5'
  $OP -X POST -H 'content-type: application/json' -d '{"operation":"install","arguments":{"packages":["fixture-vardir"]}}' https://127.0.0.1:$port/v1/transactions
  $OP -X POST -H 'content-type: application/json' -d '{"operation":"rollback"}' 'https://127.0.0.1:$port/v1/transactions?wait=true'
  curl -s http://127.0.0.1:$metrics_port/metrics
  $bin/apt-layer install --agent unix:$demo/agent.sock fixture-conf
  $bin/apt-layer kargs --agent https://127.0.0.1:$port --cert $demo/pki/admin.crt --key $demo/pki/admin.key --ca $demo/pki/ca.crt --append quiet
  $bin/apt-layer history --agent unix:$demo/agent.sock
  $bin/apt-layer db diff --sysroot $S
Agent log: $demo/agent.log (kept as $log when the demo ends)
MSG
wait "$agent_pid"
