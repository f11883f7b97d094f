#!/bin/bash
# The main job out of the box: apt-layerd on an embedded demo sysroot, with mutual TLS on localhost.
# Builds a small base here (busybox + a dpkg database) and a local flat apt repository of tiny
# packages, composes and deploys the base on a tmpfs sysroot, makes a throwaway CA with server and
# client certificates, starts the agent, runs one layering transaction through the API while you
# watch its event stream, and prints ready-to-paste curl and apt-layer commands. Ctrl-C stops the
# agent and removes everything.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sh "$here/scripts/deps.sh"
(cd "$here" && swift build)
bin=$here/.build/debug
export OSTREE_SYSROOT_DEBUG=mutable-deployments
demo=$(mktemp -d /tmp/apt-layer-demo.XXXXXX)
mount -t tmpfs -o size=1G tmpfs "$demo"
agent_pid=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$agent_pid" ]; then kill -TERM "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null || true; fi
  cd /; umount -l "$demo" 2>/dev/null; rmdir "$demo" 2>/dev/null
  echo; echo "Agent stopped; demo sysroot removed."
}
trap cleanup EXIT
trap 'exit 0' INT TERM
S=$demo/sysroot
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

say "Building a small base image and a local apt repository"
"$here/Tests/Fixtures/make-debs.sh" "$demo/fixtures" >/dev/null
"$here/Tests/Fixtures/make-rootfs.sh" "$demo/rootfs" "$demo/fixtures/debs" "$demo/fixtures/repo" demo
run "$bin/apt-layer" init --sysroot "$S" --os debian
run "$bin/apt-layer" compose rootfs -q --sysroot "$S" --ref demo/base --version 1.0 --stub-kernel "$demo/rootfs"
run "$bin/apt-layer" rebase -q --sysroot "$S" demo/base

say "Making a demo CA, a server certificate and client certificates (reader, operator, admin)"
"$here/scripts/make-test-pki.sh" "$demo/pki"
cat > "$demo/agent.yaml" <<YAML
listen: "127.0.0.1:7443"
metrics-listen: "127.0.0.1:9478"
tls: { certificate: $demo/pki/server.crt, key: $demo/pki/server.key, client-ca: $demo/pki/ca.crt }
roles: { reader: reader, operator: operator, admin: admin }
sysroot: $S
os: debian
state-directory: $demo/state
socket: $demo/agent.sock
YAML

say "Starting apt-layerd (mTLS on 127.0.0.1:7443, metrics on 127.0.0.1:9478)"
"$bin/apt-layerd" --config "$demo/agent.yaml" --drop-in "$demo/agent.d" > "$demo/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:9478/v1/healthz >/dev/null && break; sleep 0.1; done
grep -E "listening|ready" "$demo/agent.log" | sed 's/^/  /'

C="curl -sS --cacert $demo/pki/ca.crt"
OP="$C --cert $demo/pki/operator.crt --key $demo/pki/operator.key"
RD="$C --cert $demo/pki/reader.crt --key $demo/pki/reader.key"
say "A layering transaction through the API (operator certificate)"
printf '\033[2m$ %s\033[0m\n' "curl ... -X POST https://127.0.0.1:7443/v1/transactions -d '{\"operation\":\"install\",\"arguments\":{\"packages\":[\"fixture-app\",\"fixture-user\"]}}'"
reply=$($OP -X POST -H 'content-type: application/json' \
  -d '{"operation":"install","arguments":{"packages":["fixture-app","fixture-user"]}}' https://127.0.0.1:7443/v1/transactions)
echo "$reply"
id=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
say "Its event stream (Server-Sent Events)"
$RD -N "https://127.0.0.1:7443/v1/transactions/$id/events"
say "The same host through the CLI (over the agent's local socket)"
run "$bin/apt-layer" status --agent "unix:$demo/agent.sock"
run "$bin/apt-layer" history --agent "unix:$demo/agent.sock"
say "A reader may not start transactions"
$RD -X POST -H 'content-type: application/json' -d '{"operation":"rollback"}' https://127.0.0.1:7443/v1/transactions; echo

cat <<MSG

The agent keeps running until you press Ctrl-C. Try, in another terminal (as root):
  $RD https://127.0.0.1:7443/v1/status
  $RD 'https://127.0.0.1:7443/v1/transactions?limit=5'
  $OP -X POST -H 'content-type: application/json' -d '{"operation":"install","arguments":{"packages":["fixture-vardir"]}}' https://127.0.0.1:7443/v1/transactions
  $OP -X POST -H 'content-type: application/json' -d '{"operation":"rollback"}' 'https://127.0.0.1:7443/v1/transactions?wait=true'
  curl -s http://127.0.0.1:9478/metrics
  $bin/apt-layer install --agent unix:$demo/agent.sock fixture-conf
  $bin/apt-layer kargs --agent https://127.0.0.1:7443 --cert $demo/pki/admin.crt --key $demo/pki/admin.key --ca $demo/pki/ca.crt --append quiet
  $bin/apt-layer history --agent unix:$demo/agent.sock
  $bin/apt-layer db diff --sysroot $S
Agent log: $demo/agent.log
MSG
wait "$agent_pid"
