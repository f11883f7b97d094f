#!/bin/bash
# Benchmark (not a test) of apt-layerd, in one run on this machine:
#  - GET /v1/status over mTLS with wrk (keep-alive, 64 connections), ROUNDS rounds (default 3), each
#    round: nginx serving the same JSON bytes over TLS with the same certificates and
#    client-certificate verification, the minimal Hummingbird TLS server returning the same bytes
#    (Sources/apt-layer-bench-server: the ceiling of the stack we build on), and apt-layerd; per
#    server req/s, p50, p99, CPU µs per request (utime+stime over requests) and syscalls per request
#    (perf stat raw_syscalls:sys_enter over the same run); the median round is reported;
#  - agent memory idle and at peak during a layering transaction (RSS and anonymous RSS);
#  - time from exec to READY=1 (sd_notify);
#  - footprint: RSS, anonymous RSS and PSS of the packaged agent (the binaries as the release .deb
#    installs them: APT_LAYER_BENCH_DEB=FILE, else scripts/build-deb.sh builds it) idle, after the
#    wrk run and at peak during a transaction, beside the development build (.build/release);
#    binary, package and installed sizes.
# Everything else runs the packaged binaries too; the minimal server is the development build's.
# wrk cannot present a client certificate; bench/support/wrk-client-cert.c is LD_PRELOADed into it
# (for every server) to load one. Run as root:  bench/agent.sh [SECONDS] [ROUNDS]
set -euo pipefail
DURATION=${1:-10}
ROUNDS=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
for product in apt-layerd apt-layer apt-layer-bench-server; do (cd "$here" && swift build -c release --product $product >/dev/null); done
deb=${APT_LAYER_BENCH_DEB:-$(cd "$here" && sh scripts/build-deb.sh)}
case $deb in /*) ;; *) deb=$here/$deb ;; esac
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
command -v wrk >/dev/null && command -v nginx >/dev/null || apt-get install -y -qq wrk nginx-light >/dev/null
export OSTREE_SYSROOT_DEBUG=mutable-deployments
work=$(mktemp -d /tmp/apt-layerd-bench.XXXXXX)
mount -t tmpfs -o size=2G tmpfs "$work"
agent=""
cleanup() {
  [ -n "$agent" ] && kill "$agent" 2>/dev/null; wait 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  sleep 0.3; umount -l "$work"; rmdir "$work"
}
trap cleanup EXIT
dev=$here/.build/release
dpkg-deb -x "$deb" "$work/pkg"
bin=$work/pkg/usr/bin
S=$work/sysroot
gcc -shared -fPIC -O2 -o "$work/wrk-client-cert.so" "$here/bench/support/wrk-client-cert.c" -ldl
. "$here/bench/support/agent-bed.sh"
# wrk's 64 and the readers' 300 connections come from one address (the default limit is 32).
AGENT_BED_SOCKET=$work/agent.sock agent_bed "$work" "$bin" "max-connections-per-peer: 1024"

ready=()
for i in 1 2 3 4 5; do
  rm -rf "$work/state"
  ready+=("$(python3 "$here/bench/support/ready.py" "$work/agent.pid" -- "$bin/apt-layerd" --config "$work/agent.yaml" --drop-in "$work/none")")
  agent=$(cat "$work/agent.pid")
  if [ "$i" -lt 5 ]; then kill "$agent"; while kill -0 "$agent" 2>/dev/null; do sleep 0.05; done; fi
done
ready_ms=$(printf '%s\n' "${ready[@]}" | sort -n | sed -n 3p)
C0="curl -sS --cacert $work/pki/ca.crt --cert $work/pki/reader.crt --key $work/pki/reader.key"
# The development build beside it, idle after one request, on a copy of the same state.
kill "$agent"; while kill -0 "$agent" 2>/dev/null; do sleep 0.05; done
dev_ready=$(python3 "$here/bench/support/ready.py" "$work/dev.pid" -- "$dev/apt-layerd" --config "$work/agent.yaml" --drop-in "$work/none")
$C0 https://127.0.0.1:17443/v1/status >/dev/null; sleep 1
read -r dev_rss dev_anon dev_pss <<<"$(mem "$(cat "$work/dev.pid")")"
kill "$(cat "$work/dev.pid")"; while kill -0 "$(cat "$work/dev.pid")" 2>/dev/null; do sleep 0.05; done
python3 "$here/bench/support/ready.py" "$work/agent.pid" -- "$bin/apt-layerd" --config "$work/agent.yaml" --drop-in "$work/none" >/dev/null
agent=$(cat "$work/agent.pid")

C="curl -sS --cacert $work/pki/ca.crt --cert $work/pki/reader.crt --key $work/pki/reader.key"
$C https://127.0.0.1:17443/v1/status > "$work/status.json"
sleep 1
rss() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
read -r idle_rss idle_anon idle_pss <<<"$(mem "$agent")"

# nginx: the same JSON bytes, same certificate, same client-certificate verification.
mkdir -p "$work/www/v1" "$work/nginx"
cp "$work/status.json" "$work/www/v1/status"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:18443 ssl;
    ssl_certificate $work/pki/server.crt; ssl_certificate_key $work/pki/server.key;
    ssl_client_certificate $work/pki/ca.crt; ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    location / { root $work/www; default_type application/json; }
  }
}
NGINX
nginx -c "$work/nginx.conf"
sleep 0.5

"$dev/apt-layer-bench-server" 127.0.0.1:19443 "$work/pki/server.crt" "$work/pki/server.key" "$work/pki/ca.crt" "$work/status.json" &
minimal=$!
sleep 0.5
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)

# One wrk run against URL while perf counts PID's syscalls; prints "rps p50_ms p99_ms cpu_us_per_req syscalls_per_req errors".
bench() {
  local url=$1 pid=$2 t0 t1 requests
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf.out" -p "$pid" -- sleep "$DURATION" &
  local perf_pid=$!
  LD_PRELOAD=$work/wrk-client-cert.so WRK_CLIENT_CERT=$work/pki/reader.crt WRK_CLIENT_KEY=$work/pki/reader.key \
    wrk -t2 -c64 -d"${DURATION}s" --latency "$url" > "$work/wrk.out" 2>&1
  wait "$perf_pid" || true
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  python3 - "$work/wrk.out" "$work/perf.out" "$t0" "$t1" "$requests" "$(getconf CLK_TCK)" <<'PY'
import re, sys
wrk, perf, t0, t1, n, hz = open(sys.argv[1]).read(), open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def ms(label):
    m = re.search(r"^\s*%s\s+([0-9.]+)(us|ms|s)" % label, wrk, re.M)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", wrk).group(1))
calls = [int(l.split(",")[0]) for l in perf.splitlines() if "raw_syscalls" in l and l.split(",")[0].isdigit()]
errors = " ".join(l.strip() for l in wrk.splitlines() if "Non-2xx" in l or "Socket errors" in l).replace(" ", "_") or "-"
print(f"{rps:.0f} {ms('50%'):.2f} {ms('99%'):.2f} {(t1 - t0) / hz * 1e6 / max(n, 1):.0f} {(calls[0] if calls else 0) / max(n, 1):.1f} {errors}")
PY
}
for round in $(seq "$ROUNDS"); do
  echo "nginx $(bench https://127.0.0.1:18443/v1/status "$nginx_worker")" >> "$work/rounds"
  echo "minimal $(bench https://127.0.0.1:19443/v1/status "$minimal")" >> "$work/rounds"
  echo "agent $(bench https://127.0.0.1:17443/v1/status "$agent")" >> "$work/rounds"
done
kill "$minimal"
# The median round of each server by req/s, and the spread of the ratio.
read -r agent_rps agent_p50 agent_p99 agent_cpu agent_sys agent_err <<<"$(awk '$1=="agent"' "$work/rounds" | sort -k2 -n | awk -v r="$ROUNDS" 'NR==int((r+1)/2) {$1=""; print}')"
read -r nginx_rps nginx_p50 nginx_p99 nginx_cpu nginx_sys nginx_err <<<"$(awk '$1=="nginx"' "$work/rounds" | sort -k2 -n | awk -v r="$ROUNDS" 'NR==int((r+1)/2) {$1=""; print}')"
read -r min_rps min_p50 min_p99 min_cpu min_sys min_err <<<"$(awk '$1=="minimal"' "$work/rounds" | sort -k2 -n | awk -v r="$ROUNDS" 'NR==int((r+1)/2) {$1=""; print}')"
ratios=$(paste -d' ' <(awk '$1=="agent" {print $2}' "$work/rounds") <(awk '$1=="nginx" {print $2}' "$work/rounds") | awk '{printf "%.2f ", $1/$2}')
read -r after_load_rss after_load_anon after_load_pss <<<"$(mem "$agent")"


# Peak memory during a layering transaction (sampled every 20 ms).
peak_rss=0; peak_anon=0; peak_pss=0
id=$($C --cert "$work/pki/operator.crt" --key "$work/pki/operator.key" -H 'content-type: application/json' \
  -d '{"operation":"install","arguments":{"packages":["fixture-app","fixture-user","fixture-vardir","fixture-conf"]}}' \
  https://127.0.0.1:17443/v1/transactions | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
while :; do
  read -r r a p <<<"$(mem "$agent")"
  [ "$r" -gt "$peak_rss" ] && peak_rss=$r; [ "$a" -gt "$peak_anon" ] && peak_anon=$a; [ "$p" -gt "$peak_pss" ] && peak_pss=$p
  state=$($C "https://127.0.0.1:17443/v1/transactions/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  case $state in succeeded|failed|cancelled) break ;; esac
  sleep 0.02
done

# Rollback latency (issue 12): through the API on one kept-alive mTLS connection, from the POST to
# the `finished` event of its stream; with the CLI on the same sysroot (process start included);
# and the CLI's process start alone (--version). Median of 7 each, in ms.
# Four deployments, as bench/layering.sh measures: pin the default, add one by a kargs edit, three times.
for n in 1 2 3; do "$bin/apt-layer" pin -q --local --sysroot "$S" 0 >/dev/null; "$bin/apt-layer" kargs -q --local --sysroot "$S" --append "rb$n=1" >/dev/null; done
api_rollback=$(python3 - "$work/pki" <<'PY'
import http.client, json, ssl, statistics, sys, time
pki = sys.argv[1]
ctx = ssl.create_default_context(cafile=f"{pki}/ca.crt")
ctx.load_cert_chain(f"{pki}/operator.crt", f"{pki}/operator.key")
ctx.check_hostname = False
times = []
for _ in range(7):
    conn = http.client.HTTPSConnection("127.0.0.1", 17443, context=ctx)
    conn.connect()
    t0 = time.perf_counter()
    conn.request("POST", "/v1/transactions", body=json.dumps({"operation": "rollback"}), headers={"content-type": "application/json"})
    reply = conn.getresponse(); id_ = json.loads(reply.read())["id"]
    conn.request("GET", f"/v1/transactions/{id_}/events")
    stream = conn.getresponse()
    while True:
        line = stream.readline()
        if not line or line.startswith(b"event: finished"): break
    times.append((time.perf_counter() - t0) * 1000)
    conn.close()
print(f"{statistics.median(times):.1f}")
PY
)
# The CLI through the agent's local socket is what `apt-layer rollback` and `status` do on a host.
cli_rollback=(); cli_start=(); sock_rollback=(); sock_status=()
for i in 1 2 3 4 5 6 7; do
  t0=$(date +%s%N); "$bin/apt-layer" rollback -q --local --sysroot "$S" >/dev/null; t1=$(date +%s%N); cli_rollback+=("$(( (t1 - t0) / 1000 ))")
  t0=$(date +%s%N); "$bin/apt-layer" rollback -q --agent "unix:$work/agent.sock" >/dev/null; t1=$(date +%s%N); sock_rollback+=("$(( (t1 - t0) / 1000 ))")
  t0=$(date +%s%N); "$bin/apt-layer" status --agent "unix:$work/agent.sock" >/dev/null; t1=$(date +%s%N); sock_status+=("$(( (t1 - t0) / 1000 ))")
  t0=$(date +%s%N); "$bin/apt-layer" --version >/dev/null; t1=$(date +%s%N); cli_start+=("$(( (t1 - t0) / 1000 ))")
done
ms_median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'; }
deployments=$("$bin/apt-layer" status --json --sysroot "$S" | grep -c '"index"')

# 200 concurrent readers (wrk) and 100 SSE clients following a running transaction (a postinst
# that sleeps), sampled every 100 ms; then everything closes and the transaction is cancelled.
# Prints "rps p99 before peak after2s after15s errors" (anonymous RSS in kB).
readers() {
  local O="--cert $work/pki/operator.crt --key $work/pki/operator.key" slow sse_pids=() wrk_pid peak=0 a s before
  before=$(rss "$agent" RssAnon)
  slow=$($C $O -H 'content-type: application/json' -d '{"operation":"install","arguments":{"packages":["fixture-slow"]}}' \
    https://127.0.0.1:17443/v1/transactions | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for i in $(seq 100); do $C -N "https://127.0.0.1:17443/v1/transactions/$slow/events" >/dev/null 2>&1 & sse_pids+=($!); done
  (LD_PRELOAD=$work/wrk-client-cert.so WRK_CLIENT_CERT=$work/pki/reader.crt WRK_CLIENT_KEY=$work/pki/reader.key \
    wrk -t2 -c200 -d"${DURATION}s" --latency https://127.0.0.1:17443/v1/status > "$work/wrk200.out" 2>&1) & wrk_pid=$!
  while kill -0 "$wrk_pid" 2>/dev/null; do a=$(rss "$agent" RssAnon); [ "$a" -gt "$peak" ] && peak=$a; sleep 0.1; done
  kill "${sse_pids[@]}" 2>/dev/null; wait "${sse_pids[@]}" 2>/dev/null || true
  $C $O -X DELETE "https://127.0.0.1:17443/v1/transactions/$slow" >/dev/null
  for i in $(seq 100); do
    s=$($C "https://127.0.0.1:17443/v1/transactions/$slow" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    case $s in cancelled|failed|succeeded) break ;; esac; sleep 0.1
  done
  sleep 2; local after2; after2=$(rss "$agent" RssAnon)
  sleep 13; local after15; after15=$(rss "$agent" RssAnon)
  echo "$(awk '/Requests\/sec/ {print $2}' "$work/wrk200.out") $(awk '$1=="99%" {print $2}' "$work/wrk200.out") $before $peak $after2 $after15 $(awk '/Non-2xx|Socket errors/' "$work/wrk200.out" | tr '\n' ' ')"
}
read -r r_rps r_p99 r_before r_peak r_after2 r_after15 r_err <<<"$(readers)" || true
# The same with trim-memory off (the agent restarted on the same sysroot and state).
kill "$agent"; while kill -0 "$agent" 2>/dev/null; do sleep 0.1; done
echo "trim-memory: false" >> "$work/agent.yaml"
python3 "$here/bench/support/ready.py" "$work/agent.pid" -- "$bin/apt-layerd" --config "$work/agent.yaml" --drop-in "$work/none" >/dev/null
agent=$(cat "$work/agent.pid")
$C https://127.0.0.1:17443/v1/status >/dev/null; sleep 1
read -r n_rps n_p99 n_before n_peak n_after2 n_after15 n_err <<<"$(readers)" || true

mb() { awk -v k="$1" 'BEGIN {printf "%.1f MB", k/1024}'; }
printf '\n| GET /v1/status, wrk 64 connections, %ss, %s bytes (median of %s rounds) | req/s | p50 | p99 | CPU µs/request | syscalls/request |\n|---|---|---|---|---|---|\n' "$DURATION" "$(stat -c %s "$work/status.json")" "$ROUNDS"
printf '| nginx (same bytes, TLS, client-certificate verification) | %s | %s ms | %s ms | %s | %s |\n' "$nginx_rps" "$nginx_p50" "$nginx_p99" "$nginx_cpu" "$nginx_sys"
printf '| minimal Hummingbird TLS server (same bytes; the ceiling) | %s | %s ms | %s ms | %s | %s |\n' "$min_rps" "$min_p50" "$min_p99" "$min_cpu" "$min_sys"
printf '| apt-layerd | %s | %s ms | %s ms | %s | %s |\n' "$agent_rps" "$agent_p50" "$agent_p99" "$agent_cpu" "$agent_sys"
printf '\napt-layerd / nginx req/s per round: %s(ratio of the medians %s); minimal / nginx (medians): %s; errors: agent %s, nginx %s, minimal %s\n' "$ratios" \
  "$(awk -v a="$agent_rps" -v n="$nginx_rps" 'BEGIN {printf "%.2f", a/n}')" "$(awk -v a="$min_rps" -v n="$nginx_rps" 'BEGIN {printf "%.2f", a/n}')" "$agent_err" "$nginx_err" "$min_err"
printf '\n| apt-layerd measurement | value |\n|---|---|\n'
printf '| packaged (%s), idle: RSS / anonymous RSS / PSS | %s / %s / %s |\n' "$(basename "$deb")" "$(mb "$idle_rss")" "$(mb "$idle_anon")" "$(mb "$idle_pss")"
printf '| development build (.build/release), idle: RSS / anonymous RSS / PSS | %s / %s / %s |\n' "$(mb "$dev_rss")" "$(mb "$dev_anon")" "$(mb "$dev_pss")"
printf '| packaged, after the wrk run: RSS / anonymous RSS / PSS | %s / %s / %s |\n' "$(mb "$after_load_rss")" "$(mb "$after_load_anon")" "$(mb "$after_load_pss")"
printf '| 200 readers (wrk, %ss) + 100 SSE clients on a running transaction | %s req/s, p99 %s %s|\n' "$DURATION" "$r_rps" "$r_p99" "$r_err"
printf '| anonymous RSS then: before / peak / 2 s after / 15 s after | %s / %s / %s / %s |\n' "$(mb "$r_before")" "$(mb "$r_peak")" "$(mb "$r_after2")" "$(mb "$r_after15")"
printf '| the same with trim-memory: false | %s / %s / %s / %s |\n' "$(mb "$n_before")" "$(mb "$n_peak")" "$(mb "$n_after2")" "$(mb "$n_after15")"
printf '| packaged, peak during a layering transaction (%s): RSS / anonymous RSS / PSS | %s / %s / %s |\n' "$state" "$(mb "$peak_rss")" "$(mb "$peak_anon")" "$(mb "$peak_pss")"
if [ -L "$bin/apt-layerd" ]; then
  printf '| program packaged: apt-layer (apt-layerd a symlink to it) | %s |\n' "$(mb $(( $(stat -c %s "$bin/apt-layer") / 1024 )))"
else
  printf '| programs packaged: apt-layerd / apt-layer | %s / %s |\n' "$(mb $(( $(stat -c %s "$bin/apt-layerd") / 1024 )))" "$(mb $(( $(stat -c %s "$bin/apt-layer") / 1024 )))"
fi
printf '| binaries of the development build: apt-layerd / apt-layer | %s / %s |\n' "$(mb $(( $(stat -c %s "$dev/apt-layerd") / 1024 )))" "$(mb $(( $(stat -c %s "$dev/apt-layer") / 1024 )))"
printf '| .deb / installed size | %s / %s |\n' "$(mb $(( $(stat -c %s "$deb") / 1024 )))" "$(mb "$(dpkg-deb -f "$deb" Installed-Size)")"
printf '| exec to READY=1, packaged (median of 5) / development build (one) | %s ms / %s ms |\n' "$ready_ms" "$dev_ready"
printf '| rollback through the API, POST to its finished event (%s deployments, median of 7) | %s ms |\n' "$deployments" "$api_rollback"
printf '| rollback with the CLI, local, process included (median of 7) | %s ms |\n' "$(ms_median "${cli_rollback[@]}")"
printf '| rollback with the CLI through the agent'"'"'s socket, as on a host, process included (median of 7) | %s ms |\n' "$(ms_median "${sock_rollback[@]}")"
printf '| status with the CLI through the agent'"'"'s socket (median of 7) | %s ms |\n' "$(ms_median "${sock_status[@]}")"
printf '| the CLI process alone: apt-layer --version (median of 7) | %s ms |\n' "$(ms_median "${cli_start[@]}")"
