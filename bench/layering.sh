#!/bin/bash
# Benchmark (not a test): apt-layer install curl vs plain apt-get install curl in a chroot copy of
# the same minbase, N runs each with downloads cached for both (interleaved); rollback latency with 4
# deployments; layering on a base about 10x larger in files; apt-layer's time per phase
# (bench/support/phases.py). Prints tables. Run as root:  bench/layering.sh [N]
set -euo pipefail
N=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/.build/release/apt-layer"
[ -x "$bin" ] || (cd "$here" && swift build -c release --product apt-layer >/dev/null)
export OSTREE_SYSROOT_DEBUG=mutable-deployments
work=$(mktemp -d /tmp/apt-layer-bench.XXXXXX)
mount -t tmpfs -o size=6G tmpfs "$work"
trap 'umount -l "$work"; rmdir "$work"' EXIT
S=$work/sysroot
al() { "$bin" "$@" -q --sysroot "$S"; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

al init --os debian >/dev/null
printf 'ref: bench/minbase\nversion: "1"\nstub-kernel: true\n' > "$work/minbase.yaml"
al compose tree "$work/minbase.yaml" >/dev/null
al rebase bench/minbase >/dev/null
# Warm both download caches once.
al install curl >/dev/null; al uninstall curl >/dev/null
ostree checkout --repo="$S/ostree/repo" -U bench/minbase "$work/plain-src" 2>/dev/null || ostree checkout --repo="$S/ostree/repo" bench/minbase "$work/plain-src"
# Plain apt needs a normal (non-ostree) tree: use a fresh mmdebstrap tree.
rm -rf "$work/plain-src"; mmdebstrap --quiet --mode=root --variant=minbase bookworm "$work/plain-src" >/dev/null 2>&1
mkdir -p "$work/aptcache"
cp -a "$work/plain-src" "$work/warm" && chroot "$work/warm" apt-get -qq -o Dir::Cache::archives=/var/cache/apt/archives update >/dev/null
mount --bind /proc "$work/warm/proc"; chroot "$work/warm" apt-get -qq -y --no-install-recommends --download-only install curl >/dev/null; umount "$work/warm/proc"
cp -a "$work/warm/var/cache/apt/archives/." "$work/aptcache/"; cp -a "$work/warm/var/lib/apt/lists" "$work/lists"; rm -rf "$work/warm"

layer=(); plain=()
for i in $(seq "$N"); do
  python3 "$here/bench/support/phases.py" "$bin" install curl --sysroot "$S" >> "$work/phases.jsonl"
  layer+=("$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["total"])' < "$work/phases.jsonl")")
  al uninstall curl >/dev/null
  rm -rf "$work/chroot"; cp -a "$work/plain-src" "$work/chroot"
  cp -a "$work/aptcache/." "$work/chroot/var/cache/apt/archives/"; rm -rf "$work/chroot/var/lib/apt/lists"; cp -a "$work/lists" "$work/chroot/var/lib/apt/lists"
  mount --bind /proc "$work/chroot/proc"
  t0=$(now); chroot "$work/chroot" apt-get -qq -y --no-install-recommends install curl >/dev/null 2>&1; t1=$(now)
  umount "$work/chroot/proc"; plain+=("$(echo "$t1 - $t0" | bc)")
done
ml=$(printf '%s\n' "${layer[@]}" | median); mp=$(printf '%s\n' "${plain[@]}" | median)
# Each round's own ratio (apt-layer and apt-get ran back to back), for the spread.
ratios=(); for i in "${!layer[@]}"; do ratios+=("$(echo "${layer[$i]} / ${plain[$i]}" | bc -l)"); done
rmin=$(printf '%s\n' "${ratios[@]}" | sort -n | head -1); rmax=$(printf '%s\n' "${ratios[@]}" | sort -n | tail -1)

# Rollback latency with exactly 4 deployments: unpin everything, drop rollbacks, then make three
# more deployments (kargs edits), pinning each previous one so all four stay.
for i in $(seq 0 20); do al unpin "$i" >/dev/null 2>&1 || true; done
al cleanup --rollback >/dev/null || true
for n in 1 2 3; do al pin 0 >/dev/null; al kargs --append "bench$n=1" >/dev/null; done
count=$("$bin" status --json --sysroot "$S" | grep -c '"index"')
rb=()
for i in $(seq "$N"); do t0=$(now); al rollback >/dev/null; t1=$(now); rb+=("$(echo "($t1 - $t0) * 1000" | bc)"); done
mr=$(printf '%s\n' "${rb[@]}" | median)

# A base about 10x larger in files: minbase plus 10x its file count of small files under /usr/share.
files=$(find "$work/plain-src" -xdev -type f | wc -l)
big=$work/bigroot; cp -a "$work/plain-src" "$big"
mkdir -p "$big/usr/share/bench-bulk"
python3 - "$big/usr/share/bench-bulk" "$((files * 9))" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, str(i // 1000))
    if i % 1000 == 0: os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"f{i}"), "w") as f: f.write(f"{i}\n")
PY
"$bin" compose rootfs -q --sysroot "$S" --ref bench/big --version big --stub-kernel "$big" >/dev/null
al rebase bench/big >/dev/null; al uninstall --all >/dev/null 2>&1 || true
bigl=()
for i in $(seq "$N"); do
  python3 "$here/bench/support/phases.py" "$bin" install curl --sysroot "$S" >> "$work/phases-big.jsonl"
  bigl+=("$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["total"])' < "$work/phases-big.jsonl")")
  al uninstall curl >/dev/null
done
mb=$(printf '%s\n' "${bigl[@]}" | median)
bigfiles=$(find "$big" -xdev -type f 2>/dev/null | wc -l)

printf '\n| measurement (median of %s) | value |\n|---|---|\n' "$N"
printf '| apt-layer install curl (minbase, %s files) | %.2f s |\n' "$files" "$ml"
printf '| apt-get install curl in a chroot copy | %.2f s |\n' "$mp"
printf '| ratio apt-layer / apt-get (median; per-round spread %.2f–%.2f) | %.2f |\n' "$rmin" "$rmax" "$(echo "$ml / $mp" | bc -l)"
printf '| rollback with %s deployments | %.0f ms |\n' "$count" "$mr"
printf '| apt-layer install curl on a %s-file base | %.2f s |\n' "$bigfiles" "$mb"
printf '| ratio %s-file base / minbase | %.2f |\n' "$bigfiles" "$(echo "$mb / $ml" | bc -l)"
# Where apt-layer's time goes: each phase's median over the N installs, on the minbase and on the
# 10x base (the phases are the engine's own progress lines; "process start and planning" is exec to
# the first phase).
printf '\n| apt-layer install curl, phase (median of %s) | minbase s | share | %s-file base s | share |\n|---|---|---|---|---|\n' "$N" "$bigfiles"
python3 - "$work/phases.jsonl" "$work/phases-big.jsonl" "$mp" <<'PY'
import collections, json, statistics, sys
def load(path):
    runs = [json.loads(l) for l in open(path) if l.strip()]
    order, times = [], collections.defaultdict(list)
    for r in runs:
        for name, seconds in r["phases"]:
            if name not in order: order.append(name)
            times[name].append(seconds)
    med = {n: statistics.median(times[n] + [0.0] * (len(runs) - len(times[n]))) for n in order}
    return order, med, statistics.median(r["total"] for r in runs)
order, small, ts = load(sys.argv[1])
border, big, tb = load(sys.argv[2])
for name in border:
    if name not in order: order.append(name)
for name in order:
    a, b = small.get(name, 0.0), big.get(name, 0.0)
    print(f"| {name} | {a:.3f} | {100 * a / ts:.0f} % | {b:.3f} | {100 * b / tb:.0f} % |")
print(f"| total (median) | {ts:.3f} | 100 % | {tb:.3f} | 100 % |")
print(f"| plain apt-get install curl (median, same runs) | {float(sys.argv[3]):.3f} | | | |")
PY
