#!/bin/sh
# Re-derives deploy/keyrings/ubuntu-archive-keyring.gpg the way it was first taken
# (docs/distributions.md): Debian 13's `ubuntu-keyring` package, fetched by apt from Debian's
# trixie archive and so verified by the build host's debian-archive-keyring (InRelease signature →
# Packages hash → .deb), the keyring file extracted from it. Prints the file's SHA-256 and the keys'
# fingerprints, and says whether it equals the committed file and the treefiles' keyring-sha256.
#   scripts/refresh-ubuntu-keyring.sh [--write]   (--write replaces the committed file; then
#                                                 update keyring-sha256 in deploy/treefiles/noble-*.yaml)
set -eu
cd "$(dirname "$0")/.."
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/etc/apt/preferences.d" "$w/etc/apt/apt.conf.d" "$w/lists/partial" "$w/cache/archives/partial"
touch "$w/status"
# The Debian archive the host already uses, with the trixie suite.
mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Origin: Debian' 2>/dev/null | grep -v security | head -n1)
[ -n "$mirror" ] || { echo "error: the host's apt sources name no Debian archive (apt-get update first)" >&2; exit 1; }
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$w/etc/apt/sources.list"
apt="-o Dir::Etc=$w/etc/apt -o Dir::State::Lists=$w/lists -o Dir::Cache=$w/cache -o Dir::State::status=$w/status -o APT::Sandbox::User=root"
apt-get $apt -q update >/dev/null
(cd "$w" && apt-get $apt -q download ubuntu-keyring >/dev/null)
dpkg-deb -x "$w"/ubuntu-keyring_*.deb "$w/x"
new="$w/x/usr/share/keyrings/ubuntu-archive-keyring.gpg"
sum=$(sha256sum "$new" | cut -d' ' -f1)
echo "ubuntu-keyring $(dpkg-deb -f "$w"/ubuntu-keyring_*.deb Version) from Debian trixie: sha256 $sum"
gpg --no-default-keyring --keyring "$new" --with-colons --list-keys 2>/dev/null | awk -F: '$1 == "fpr" { print "  key " $10 }'
committed=deploy/keyrings/ubuntu-archive-keyring.gpg
if cmp -s "$new" "$committed"; then echo "equals $committed"; else echo "DIFFERS from $committed"; fi
grep -H "keyring-sha256" deploy/treefiles/noble-*.yaml | grep -v "$sum" && echo "a treefile pins another digest" || echo "the noble treefiles pin this digest"
[ "${1:-}" = --write ] && cp "$new" "$committed" && echo "wrote $committed"
exit 0
