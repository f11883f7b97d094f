#!/bin/bash
# Benchmark (not a test): bytes on the wire for a release N → N+1 in which one package changed (a
# real security update: libssl3 3.0.20 from bookworm → 3.0.22 from bookworm-security, every file of
# the package a different build), on a bookworm minbase with libssl3 published in an archive-mode
# OSTree repository over HTTP. Compares, in the same run: the full base; N → N+1 by objects (what
# hosts pulled before static deltas); N → N+1 through a static delta (`ostree static-delta
# generate` + `ostree summary -u`, the publish flow in docs/fleet.md); apt-layer's own upgrade
# of a deployment of N, which pulls through libostree and takes the delta; and both releases as OCI
# images (`apt-layer compose oci`, N+1 with --previous N): the full image and the layer blobs of
# N+1 that N does not have, computed from the OCI layout, and the same measured through a
# docker-registry on loopback (TLS, Tests/Fixtures/registry) with apt-layer rebase and upgrade
# (skipped without docker-registry). Prints a table.
# Run as root:  bench/transport.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/.build/release/apt-layer"
[ -x "$bin" ] || bin="$here/.build/debug/apt-layer"
[ -x "$bin" ] || (cd "$here" && swift build --product apt-layer >/dev/null && bin="$here/.build/debug/apt-layer")
export OSTREE_SYSROOT_DEBUG=mutable-deployments
work=$(mktemp -d /tmp/apt-layer-transport.XXXXXX)
mount -t tmpfs -o size=6G tmpfs "$work"
server= registry= rport=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  if [ -n "$registry" ]; then
    kill "$registry" 2>/dev/null || true; wait "$registry" 2>/dev/null || true
    sh "$here/Tests/Fixtures/registry/stop-registry.sh" "$work/registry" "$rport" || true
  fi
  umount -l "$work"; rmdir "$work"
}
trap cleanup EXIT
old=3.0.20-1~deb12u2 new=3.0.22-1~deb12u2
port=$((20000 + RANDOM % 20000))

# The published tree T (libssl3 at its newest, $new), composed the way releases are.
S=$work/build
"$bin" init -q --sysroot "$S" --os debian
printf 'ref: bench/t\nversion: "2"\nstub-kernel: true\npackages: [libssl3]\n' > "$work/t.yaml"
"$bin" compose tree -q --sysroot "$S" "$work/t.yaml" >/dev/null
R=$S/ostree/repo
T=$(ostree rev-parse --repo="$R" bench/t)
# Release N: T with libssl3's files from $old (a real earlier build), its dpkg status entry too.
(cd "$work" && apt-get download -q "libssl3=$old" >/dev/null 2>&1)
dpkg-deb -x "$work"/libssl3_*.deb "$work/old-pkg"
ostree checkout --repo="$R" bench/t "$work/n"
(cd "$work/old-pkg" && find . -type f -o -type l) | while read -r f; do
  rm -f "$work/n/$f"; cp -a "$work/old-pkg/$f" "$work/n/$f"
done
st=$work/n/usr/share/dpkg/database/status
python3 - "$st" "$new" "$old" <<'PY'
import sys
p, new, old = sys.argv[1:]
s = open(p).read().split("\n\n")
s = [b.replace(f"Version: {new}", f"Version: {old}") if b.startswith("Package: libssl3\n") else b for b in s]
open(p + ".new", "w").write("\n\n".join(s))
PY
rm -f "$st"; mv "$st.new" "$st"
N=$(ostree commit --repo="$R" -b bench/base --tree=dir="$work/n" -s "release N (libssl3 $old)" --add-metadata-string=version=N)
N1=$(ostree commit --repo="$R" -b bench/base --tree=ref="$T" -s "release N+1 (libssl3 $new)" --add-metadata-string=version=N+1)
changed=$(ostree diff --repo="$R" "$N" "$N1" | wc -l)

# The web root: an archive-mode repository, as hosts pull from.
W=$work/www/repo
mkdir -p "$work/www"
ostree init --repo="$W" --mode=archive
ostree pull-local --repo="$W" "$R" "$N" bench/base >/dev/null
ostree summary -u --repo="$W"
python3 "$here/bench/support/counting_http.py" "$work/www" "$port" "$work/http.log" &
server=$!
sleep 0.5
url=http://127.0.0.1:$port/repo
bytes() { awk '{n += $3} END {print n + 0}' "$work/http.log"; }
# Bytes by kind: summary | delta parts | objects | other.
kinds() {
  awk '{ if ($1 ~ /\/summary/) s += $3; else if ($1 ~ /\/deltas\//) d += $3; else if ($1 ~ /\/objects\//) o += $3; else x += $3 }
       END { printf "%d | %d | %d | %d", s, d, o, x }' "$work/http.log"
}
reset() { : > "$work/http.log"; }
client() { ostree init --repo="$1" --mode=bare-user; ostree remote add --repo="$1" --no-gpg-verify srv "$url"; }

client "$work/c1"
reset; ostree pull --repo="$work/c1" srv "$N" >/dev/null
full=$(bytes) fullreq=$(wc -l < "$work/http.log") fullk=$(kinds)
reset; ostree pull --repo="$work/c1" --disable-static-deltas srv bench/base >/dev/null
objects=$(bytes) objreq=$(wc -l < "$work/http.log") objk=$(kinds)

ostree static-delta generate --repo="$W" --from="$N" --to="$N1" >/dev/null
ostree summary -u --repo="$W"
delta_size=$(du -sb "$W/deltas" | cut -f1)
ostree static-delta show --repo="$W" "$N-$N1" > "$work/delta-show.txt" 2>&1 || true
client "$work/c2"
ostree pull-local --repo="$work/c2" "$work/c1" "$N" >/dev/null
reset; ostree pull --repo="$work/c2" srv bench/base >/dev/null
delta=$(bytes) deltareq=$(wc -l < "$work/http.log") deltak=$(kinds)
cp "$work/http.log" "$work/delta.log"

# The same delta without fallback objects: by default libostree ships files of 4 MB and more
# (libcrypto.so.3 here) whole; --min-fallback-size raises that bound so they are bsdiff'ed too.
ostree static-delta delete --repo="$W" "$N-$N1" >/dev/null
ostree static-delta generate --repo="$W" --min-fallback-size=64 --from="$N" --to="$N1" >/dev/null
ostree summary -u --repo="$W"
tuned_size=$(du -sb "$W/deltas" | cut -f1)
client "$work/c3"
ostree pull-local --repo="$work/c3" "$work/c1" "$N" >/dev/null
reset; ostree pull --repo="$work/c3" srv bench/base >/dev/null
tuned=$(bytes) tunedreq=$(wc -l < "$work/http.log") tunedk=$(kinds)

# The same delta fetched first and applied offline (ostree static-delta apply-offline), then the
# pull: whether the objects fetched beside the delta come from applying it during the pull.
client "$work/c4"
ostree pull-local --repo="$work/c4" "$work/c1" "$N" >/dev/null
reset
d=$(cd "$W" && find deltas -name superblock | head -n1)   # the one delta on the server
d=${d%/superblock}
mkdir -p "$work/offline"
for f in $(cd "$W/$d" && ls); do curl -sf -o "$work/offline/$f" "$url/$d/$f"; done
ostree static-delta apply-offline --repo="$work/c4" "$work/offline" >/dev/null
ostree pull --repo="$work/c4" srv bench/base >/dev/null
offline=$(bytes) offlinereq=$(wc -l < "$work/http.log") offlinek=$(kinds)

# apt-layer's upgrade on a host deployed on N: the engine's pull takes the delta.
H=$work/host
"$bin" init -q --sysroot "$H" --os debian
"$bin" rebase -q --sysroot "$H" --remote-url "$url" "srv:bench/base" "$N" >/dev/null
reset; "$bin" upgrade -q --sysroot "$H" >/dev/null
ours=$(bytes) oursk=$(kinds) oursreq=$(wc -l < "$work/http.log")

# Both releases as OCI images in one layout, N+1 grouped as N was (--previous), so every package
# group that did not change makes a byte-identical layer. From the layout: the full image N
# (manifest + configuration + layers) and what a host holding N fetches for N+1 (its manifest,
# configuration and the layers N does not have: skopeo skips blobs already in the host's cache).
layout=$work/www/oci
"$bin" compose oci -q --repo "$R" --ref "$N" "oci:$layout:n" > "$work/oci.txt"
"$bin" compose oci -q --repo "$R" --ref "$N1" --previous "oci:$layout:n" "oci:$layout:n1" >> "$work/oci.txt"
eval "$(python3 - "$layout" <<'PY'
import json, shlex, sys
d = sys.argv[1]
index = json.load(open(f"{d}/index.json"))
def image(tag):
    m = next(x for x in index["manifests"] if x["annotations"]["org.opencontainers.image.ref.name"] == tag)
    return m, json.load(open(f"{d}/blobs/sha256/{m['digest'][7:]}"))
(mn, n), (mn1, n1) = image("n"), image("n1")
def row(manifest, image, layers):
    size = sum(l["size"] for l in layers)
    other = manifest["size"] + image["config"]["size"]
    return f"{size + other} | – | – | {size} | {other} | {len(layers) + 2}", size + other
have = {l["digest"] for l in n["layers"]}
new = [l for l in n1["layers"] if l["digest"] not in have]
full, fullsize = row(mn, n, n["layers"])
update, updatesize = row(mn1, n1, new)
def name(l):
    a = l.get("annotations") or {}
    return a.get("org.debian.apt-layer.packages") or a.get("org.debian.apt-layer.content", "?")
changed = "; ".join(f"{name(l)} {l['size']}" for l in new)
for k, v in dict(ocifull=full, ocifullb=fullsize, ociupd=update, ociupdb=updatesize, ocilayers=len(n["layers"]),
                 ocinew=len(new), ocichanged=changed, ocicfgs=f"{n['config']['digest']} {n1['config']['digest']}").items():
    print(f"{k}={shlex.quote(str(v))}")
PY
)"

# The same through a registry (docker-registry with TLS on loopback, its CA in certs.d, as in
# ImageTests): a new host rebases onto the tag holding N, N+1 is pushed to the tag, the host
# upgrades. Bytes are the response bodies in the registry's access log (no headers, no TLS).
regfull= regupd=
if command -v docker-registry >/dev/null; then
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sh "$here/Tests/Fixtures/registry/start-registry.sh" "$work/registry" "$rport"
  docker-registry serve "$work/registry/config.yml" > "$work/registry.log" 2>&1 &
  registry=$!
  for _ in $(seq 100); do curl -sf --cacert "$work/registry/ca.crt" "https://127.0.0.1:$rport/v2/" -o /dev/null && break; sleep 0.1; done
  tag=127.0.0.1:$rport/base:stable
  # Bytes | – | – | layer blobs | manifests, configurations, /v2/ | requests, of what the log holds.
  reglog() {
    grep -a '^127\.0\.0\.1 .* "[A-Z]* /v2/' "$work/registry.log" | awk -v cfgs="$ocicfgs" '
      BEGIN { split(cfgs, c, " "); for (i in c) cfg[c[i]] = 1 }
      { n++; b = $10 + 0; t += b; d = $7; sub(/.*\/blobs\//, "", d)
        if ($7 ~ /\/blobs\/sha256:/ && !(d in cfg)) l += b; else o += b }
      END { printf "%d | – | – | %d | %d | %d", t, l, o, n }'
  }
  skopeo copy --insecure-policy --quiet --preserve-digests "oci:$layout:n" "docker://$tag"
  IH=$work/image-host
  "$bin" init -q --sysroot "$IH" --os debian
  : > "$work/registry.log"
  "$bin" rebase -q --sysroot "$IH" "ostree-unverified-registry:$tag" >/dev/null
  regfull=$(reglog)
  skopeo copy --insecure-policy --quiet --preserve-digests "oci:$layout:n1" "docker://$tag"
  : > "$work/registry.log"
  "$bin" upgrade -q --sysroot "$IH" >/dev/null
  regupd=$(reglog)
  "$bin" status --sysroot "$IH" | grep "Commit: $N1" >/dev/null || { echo "the image host is not on N+1" >&2; exit 1; }
  kill "$registry"; wait "$registry" 2>/dev/null || true
  sh "$here/Tests/Fixtures/registry/stop-registry.sh" "$work/registry" "$rport"; registry=
fi

pct() { python3 -c "print(f'{100 * $1 / $2:.1f} %')"; }
echo
echo "Release N → N+1: libssl3 $old → $new ($changed paths differ); bookworm minbase + libssl3."
echo
echo "| transfer | bytes on the wire | summary | delta parts | objects | other | requests | of the full base |"
echo "|---|---|---|---|---|---|---|---|"
echo "| full base (release N, objects) | $full | $fullk | $fullreq | 100 % |"
echo "| N → N+1 by objects (no delta) | $objects | $objk | $objreq | $(pct "$objects" "$full") |"
echo "| N → N+1 through the static delta (ostree pull) | $delta | $deltak | $deltareq | $(pct "$delta" "$full") |"
echo "| N → N+1 through the delta made with --min-fallback-size=64 (ostree pull) | $tuned | $tunedk | $tunedreq | $(pct "$tuned" "$full") |"
echo "| N → N+1, the same delta fetched and applied offline, then ostree pull | $offline | $offlinek | $offlinereq | $(pct "$offline" "$full") |"
echo "| N → N+1, apt-layer upgrade (the engine's pull, the same delta) | $ours | $oursk | $oursreq | $(pct "$ours" "$full") |"
echo "| full OCI image N ($ocilayers layers, from the layout) | $ocifull | $(pct "$ocifullb" "$full") |"
echo "| N → N+1 by OCI layers (N+1's blobs not in N: $ocinew layers + configuration + manifest) | $ociupd | $(pct "$ociupdb" "$full") |"
if [ -n "$regfull" ]; then
  echo "| full OCI image N, apt-layer rebase from a registry (access log) | $regfull | $(pct "${regfull%% *}" "$full") |"
  echo "| N → N+1, apt-layer upgrade from the registry (access log) | $regupd | $(pct "${regupd%% *}" "$full") |"
fi
echo
echo "OCI rows: objects = layer blobs, other = manifests, configurations (and the registry's /v2/ checks);"
echo "the registry rows count response bodies from docker-registry's access log (headers and TLS not included)."
echo
echo "Requests of the delta pull:"; sed 's/^/    /' "$work/delta.log"
echo "The delta (ostree static-delta show):"; sed 's/^/    /' "$work/delta-show.txt"
echo
echo "The OCI images (apt-layer compose oci):"; sed 's/^/    /' "$work/oci.txt"
echo "Layers of N+1 not in N (group, bytes): $ocichanged"
echo
echo "static delta on the server: $delta_size bytes (default), $tuned_size bytes (--min-fallback-size=64); OCI layout on the server (both images): $(du -sb "$layout" | cut -f1) bytes"
