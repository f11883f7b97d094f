#!/bin/bash
# Benchmark (not a test) of the footprint levers of issue 24, in one run on this machine: the one
# program the .deb installs (apt-layer, and apt-layerd as a symlink to it) linked again from the
# same release objects (scripts/build-deb.sh's .build/static) each way, and the development build:
#  - on disk: the stripped program(s);
#  - the agent's RSS at READY=1, before any request (libostree not loaded yet: Sources/COSTreeLoader);
#  - the agent idle after one GET /v1/status (which loads libostree): RSS, anonymous RSS and PSS
#    (smaps_rollup);
#  - its working set: RSS after the kernel paged out the program's mappings (MADV_PAGEOUT through
#    process_madvise, bench/support/pageout.py) and 10 more requests were served — what it touches,
#    without the neighbours fault-around maps in;
#  - exec to READY=1 (median of 5) and `apt-layer --version` (median of 21), process included;
#  - the package: .deb, installed size, the -dbgsym package.
# Run as root:  bench/footprint.sh     (APT_LAYER_BENCH_DEB=FILE: a release .deb already built)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
deb=${APT_LAYER_BENCH_DEB:-$(cd "$here" && sh scripts/build-deb.sh)}
case $deb in /*) ;; *) deb=$here/$deb ;; esac
ddeb=$(dirname "$deb")/$(basename "$deb" | sed 's/^apt-layer_/apt-layer-dbgsym_/; s/\.deb$/.ddeb/')
# The development build (dynamic Swift runtime) and, for the two-program row, the agent as a
# program of its own from the same static objects.
(cd "$here" && swift build -c release --product apt-layer >/dev/null && swift build -c release --product apt-layerd >/dev/null)
# shellcheck disable=SC2046  # (build-deb.sh's flags: the same objects, not a rebuild)
(cd "$here" && swift build -c release --static-swift-stdlib --scratch-path .build/static --product apt-layerd $(cat scripts/linkorder/swift-flags) >/dev/null)
export OSTREE_SYSROOT_DEBUG=mutable-deployments
work=$(mktemp -d /tmp/apt-layer-footprint.XXXXXX)
mount -t tmpfs -o size=3G tmpfs "$work"
agent=""
cleanup() {
  [ -n "$agent" ] && kill "$agent" 2>/dev/null; wait 2>/dev/null || true
  sleep 0.3; umount -l "$work"; rmdir "$work"
}
trap cleanup EXIT

# The variants, each a directory holding apt-layer and apt-layerd.
relink() { python3 "$here/scripts/linkorder/relink.py" "$here/.build/static/release.yaml" "$@"; }
strip_it() { strip --strip-unneeded --remove-section=.comment --remove-section=.note "$1"; }
mkdir -p "$work/defaults" "$work/noexport" "$work/two" "$work/eager" "$work/unordered" "$work/pkg"
relink apt-layer "$work/defaults/apt-layer" --toolchain-defaults
relink apt-layer "$work/noexport/apt-layer" --toolchain-defaults -Xlinker --no-export-dynamic
relink apt-layer "$work/two/apt-layer" --toolchain-defaults
relink apt-layerd "$work/two/apt-layerd" --toolchain-defaults
# As packaged, but with libostree, GIO, GObject, GLib and libarchive needed at exec (as before
# COSTreeLoader): the dynamic loader maps their ~50 libraries before main.
relink apt-layer "$work/eager/apt-layer" -Xlinker --no-as-needed -lostree-1 -lgio-2.0 -lgobject-2.0 -lglib-2.0 -larchive
# As packaged, without scripts/link-order.sh's ordering file: what the release build links first.
relink apt-layer "$work/unordered/apt-layer"
for f in defaults/apt-layer noexport/apt-layer two/apt-layer two/apt-layerd eager/apt-layer unordered/apt-layer; do strip_it "$work/$f"; done
for v in defaults noexport eager unordered; do ln -s apt-layer "$work/$v/apt-layerd"; done
dpkg-deb -x "$deb" "$work/pkg"
variants=(two defaults noexport eager unordered pkg/usr/bin dev)
declare -A label=(
  [two]="two programs, toolchain defaults (gold, -export-dynamic)"
  [defaults]="one program, toolchain defaults"
  [noexport]="one program, gold, --no-export-dynamic"
  [eager]="one program, lld, --no-export-dynamic, DT_RELR, libostree needed at exec, no ordering file"
  [unordered]="one program, lld, --no-export-dynamic, DT_RELR, libostree on first use, no ordering file"
  [pkg/usr/bin]="the same with the ordering file of scripts/link-order.sh: as packaged"
  [dev]="development build (.build/release, Swift runtime shared, not stripped)")
mkdir -p "$work/dev"
ln -s "$here/.build/release/apt-layer" "$work/dev/apt-layer"; ln -s "$here/.build/release/apt-layerd" "$work/dev/apt-layerd"

# A sysroot with one layered package, and the agent's configuration.
bin=$work/pkg/usr/bin
. "$here/bench/support/agent-bed.sh"
agent_bed "$work" "$bin"
C="curl -sS -o /dev/null --cacert $work/pki/ca.crt --cert $work/pki/reader.crt --key $work/pki/reader.key https://127.0.0.1:17443/v1/status"
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
stop() { kill "$agent"; while kill -0 "$agent" 2>/dev/null; do sleep 0.05; done; agent=""; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '\nEvery variant is linked from the same objects (so all have the --version fast path of main.swift).\n'
printf '\n| variant | on disk (MB) | agent at READY, RSS (MB) | agent idle after a status, RSS / anon / PSS (MB) | working set: RSS after page-out + 10 requests (MB) | READY (ms) | apt-layer --version (ms) |\n|---|---|---|---|---|---|---|\n'
for v in "${variants[@]}"; do
  d=$work/$v
  size=$(( $(stat -L -c %s "$d/apt-layer") + $( [ -L "$d/apt-layerd" ] && [ "$v" != dev ] && echo 0 || stat -L -c %s "$d/apt-layerd") ))
  ready=()
  for i in 1 2 3 4 5; do
    rm -rf "$work/state"
    ready+=("$(python3 "$here/bench/support/ready.py" "$work/agent.pid" -- "$d/apt-layerd" --config "$work/agent.yaml" --drop-in "$work/none")")
    agent=$(cat "$work/agent.pid")
    if [ "$i" -lt 5 ]; then stop; fi
  done
  sleep 1
  read -r atready _ _ <<<"$(mem "$agent")"
  $C; sleep 1
  read -r rss anon pss <<<"$(mem "$agent")"
  # Whose code is resident, for the packaged program (.build/static holds it unstripped).
  [ "$v" = pkg/usr/bin ] && python3 "$here/bench/support/modules.py" "$agent" "$d/apt-layer" "$here/.build/static/release/apt-layer" 30 > "$work/modules.md"
  python3 "$here/bench/support/pageout.py" "$agent" "$d/apt-layerd"
  for i in $(seq 10); do $C; done; sleep 1
  read -r ws _ _ <<<"$(mem "$agent")"
  stop
  version=$(python3 - "$d/apt-layer" <<'PY'
import statistics, subprocess, sys, time
times = []
for _ in range(21):
    t0 = time.perf_counter(); subprocess.run([sys.argv[1], "--version"], stdout=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t0) * 1000)
print(f"{statistics.median(times):.1f}")
PY
)
  printf '| %s | %s | %s | %s / %s / %s | %s | %s | %s |\n' "${label[$v]}" "$(mb $((size / 1024)))" "$(mb "$atready")" "$(mb "$rss")" "$(mb "$anon")" "$(mb "$pss")" \
    "$(mb "$ws")" "$(printf '%s\n' "${ready[@]}" | median)" "$version"
done
printf '\nThe packaged agent idle, its code by module (every page of code attributed to the module filling most of it):\n'
cat "$work/modules.md"
printf '\n| package | MB |\n|---|---|\n'
printf '| %s | %s |\n' "$(basename "$deb")" "$(mb $(( $(stat -c %s "$deb") / 1024 )))"
printf '| installed size (Installed-Size) | %s |\n' "$(mb "$(dpkg-deb -f "$deb" Installed-Size)")"
[ -f "$ddeb" ] && printf '| %s (debug information, %s installed) | %s |\n' "$(basename "$ddeb")" "$(mb "$(dpkg-deb -f "$ddeb" Installed-Size)") MB" \
  "$(mb $(( $(stat -c %s "$ddeb") / 1024 )))"
true
