#!/bin/sh
# Builds apt-layer_VERSION_amd64.deb from the tree with Debian's tooling (dpkg-shlibdeps,
# dpkg-gencontrol, dpkg-deb; packaging files in deploy/debian/): one program with the Swift runtime
# linked in statically (the package needs no toolchain), installed as /usr/bin/apt-layer and, by a
# symlink, /usr/bin/apt-layerd (started by that name it is the agent), the systemd unit and tmpfiles,
# the example configuration, man pages and shell completions generated from the argument parser,
# and the docs. Binaries are stripped; in release mode their debug information goes, as Debian's
# dh_strip does, into apt-layer-dbgsym_VERSION_amd64.ddeb beside the .deb
# (/usr/lib/debug/.build-id/XX/REST.debug, found by gdb and systemd-coredump through the build ID).
#   scripts/build-deb.sh [OUTDIR]          (default .build/deb; APT_LAYER_DEB_CONFIG=debug|release)
# Prints the .deb's path.
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
out=${1:-.build/deb}
config=${APT_LAYER_DEB_CONFIG:-release}
scratch=.build/static   # its own build directory: the test build is not static
version=$(sh scripts/version.sh)
# Release: every function in a section of its own (this tree and every dependency), so that the
# link can put the ones start-up and requests run next to each other (scripts/link-order.sh).
sections=""
[ "$config" = release ] && sections=$(cat scripts/linkorder/swift-flags)
# shellcheck disable=SC2086
swift build -c "$config" --static-swift-stdlib --scratch-path "$scratch" --product apt-layer $sections >&2
# shellcheck disable=SC2086
bin=$(swift build -c "$config" --static-swift-stdlib --scratch-path "$scratch" --show-bin-path $sections)

w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
program=$bin/apt-layer
if [ "$config" = release ]; then
  # Linked again with the functions a profile run executed first (bench/footprint.sh: idle RSS).
  sh scripts/link-order.sh "$bin/apt-layer" "$w/order.txt"
  # A profile that recorded (almost) nothing would link the program unordered without a word.
  [ "$(wc -l < "$w/order.txt")" -gt 10000 ] || { echo "build-deb.sh: the link-order profile recorded too little" >&2; exit 1; }
  python3 scripts/linkorder/relink.py "$scratch/release.yaml" apt-layer "$w/apt-layer" \
    -Xlinker --symbol-ordering-file="$w/order.txt" -Xlinker --no-warn-symbol-ordering >&2
  program=$w/apt-layer
fi
r=$w/root
install -d "$r/usr/bin" "$r/lib/systemd/system" "$r/usr/lib/tmpfiles.d" "$r/usr/share/man/man1" "$r/usr/share/man/man8" \
  "$r/usr/share/bash-completion/completions" "$r/usr/share/zsh/vendor-completions" "$r/usr/share/fish/vendor_completions.d" \
  "$r/usr/share/doc/apt-layer/docs" "$r/usr/share/doc/apt-layer/examples" "$r/DEBIAN" "$w/debian"
dbg=$w/dbgsym
build_ids=""
install -m 0755 "$program" "$r/usr/bin/apt-layer"
if [ "$config" = release ]; then
  id=$(readelf -n "$program" | awk '/Build ID:/ {print $3}')
  [ -n "$id" ] || { echo "build-deb.sh: apt-layer has no build ID" >&2; exit 1; }
  rest=${id#??}
  debug=$dbg/usr/lib/debug/.build-id/${id%"$rest"}/$rest.debug
  install -d "$(dirname "$debug")"
  objcopy --only-keep-debug --compress-debug-sections=zlib "$program" "$debug"
  chmod 0644 "$debug"
  build_ids=" $id"
fi
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$r/usr/bin/apt-layer"
ln -s apt-layer "$r/usr/bin/apt-layerd"
install -m 0644 systemd/apt-layerd.service "$r/lib/systemd/system/apt-layerd.service"
install -m 0644 systemd/apt-layerd.tmpfiles.conf "$r/usr/lib/tmpfiles.d/apt-layer.conf"

# Man pages from the argument parser's own description of each command (its dump-help JSON).
python3 scripts/manpage.py "$r/usr/bin/apt-layer" 1 "$version" > "$r/usr/share/man/man1/apt-layer.1"
python3 scripts/manpage.py "$r/usr/bin/apt-layerd" 8 "$version" > "$r/usr/share/man/man8/apt-layerd.8"
gzip -9n "$r/usr/share/man/man1/apt-layer.1" "$r/usr/share/man/man8/apt-layerd.8"
"$r/usr/bin/apt-layer" --generate-completion-script bash | sed '1{/^#!/d}' > "$r/usr/share/bash-completion/completions/apt-layer"
"$r/usr/bin/apt-layer" --generate-completion-script zsh > "$r/usr/share/zsh/vendor-completions/_apt-layer"
"$r/usr/bin/apt-layer" --generate-completion-script fish > "$r/usr/share/fish/vendor_completions.d/apt-layer.fish"
chmod 0644 "$r/usr/share/bash-completion/completions/apt-layer" "$r/usr/share/zsh/vendor-completions/_apt-layer" \
  "$r/usr/share/fish/vendor_completions.d/apt-layer.fish"

install -m 0644 README.md "$r/usr/share/doc/apt-layer/README.md"
install -m 0644 docs/*.md "$r/usr/share/doc/apt-layer/docs/"
install -m 0644 deploy/agent/agent.yaml "$r/usr/share/doc/apt-layer/examples/agent.yaml"
install -m 0644 deploy/debian/copyright "$r/usr/share/doc/apt-layer/copyright"
cat > "$w/debian/changelog" <<CHANGES
apt-layer ($version) unstable; urgency=medium

  * Built from the apt-layer tree (git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)).

 -- apt-layer developers <apt-layer-devel@example.org>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
CHANGES
# A native package (no Debian revision): changelog.gz, not changelog.Debian.gz.
install -m 0644 "$w/debian/changelog" "$r/usr/share/doc/apt-layer/changelog"
gzip -9n "$r/usr/share/doc/apt-layer/changelog"
cp deploy/debian/control "$w/debian/control"
for s in postinst prerm postrm; do install -m 0755 "deploy/debian/$s" "$r/DEBIAN/$s"; done

cd "$w"
dpkg-shlibdeps -Tdebian/substvars root/usr/bin/apt-layer
echo "misc:Depends=" >> debian/substvars
dpkg-gencontrol -papt-layer -Proot -Tdebian/substvars
(cd root && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 root/DEBIAN/md5sums
cd "$here"
mkdir -p "$out"
deb="$out/apt-layer_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$w/root" "$deb" >&2
if [ -n "$build_ids" ]; then
  install -d "$dbg/DEBIAN" "$dbg/usr/share/doc"
  ln -s apt-layer "$dbg/usr/share/doc/apt-layer-dbgsym"
  cat > "$dbg/DEBIAN/control" <<CONTROL
Package: apt-layer-dbgsym
Source: apt-layer
Version: $version
Auto-Built-Package: debug-symbols
Architecture: amd64
Maintainer: $(awk -F': ' '/^Maintainer:/ {print $2}' deploy/debian/control)
Installed-Size: $(du -sk --exclude=DEBIAN "$dbg" | cut -f1)
Depends: apt-layer (= $version)
Section: debug
Priority: optional
Description: debug symbols for apt-layer
Build-Ids:$build_ids
CONTROL
  # The sections are compressed already: xz at its fastest level.
  dpkg-deb --root-owner-group -Zxz -z1 --build "$dbg" "$out/apt-layer-dbgsym_${version}_amd64.ddeb" >&2
fi
echo "$deb"
