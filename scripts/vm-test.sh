#!/bin/sh
# The VM tier (CI runs it after the other tiers): builds apt-layer's own .deb, composes a bootable
# bookworm base with it (deploy/treefiles/bookworm-vm.yaml: kernel, systemd, dracut + ostree-boot),
# writes a hybrid BIOS/UEFI disk image with `apt-layer compose image`, and boots it under qemu (TCG) to check
# staging, reboots, rollback, finalization locking, agent restarts and journald fields
# (Tests/Fixtures/system/vm-test.py), then the fleet mission under the packaged unit: a signed policy over
# HTTPS, releases over HTTP, FleetLock, health checks, rollback (Tests/Fixtures/system/vm_fleet.py), and
# then the same .deb in an Ubuntu 24.04 image (deploy/treefiles/noble-vm.yaml), booted under Secure
# Boot through a staged install, a reboot and a rollback (Tests/Fixtures/system/vm_distro.py).
# --all adds what CI leaves out for time: the Debian 12 image under Secure Boot
# (Tests/Fixtures/system/vm_uefi.py, with a power cut), the operator fall-backs, and the
# distribution scenario on Debian 13 (trixie). Root.
#   scripts/vm-test.sh [--keep] [--all | --only-fleet | --only-secure-boot | --distro trixie|noble]
# APT_LAYER_DEB=PATH uses a .deb built already (scripts/test.sh builds one for the realistic tier).
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
sh scripts/deps.sh
sh scripts/pytools.sh   # the fleet mission's OTLP receiver
keep=${1:-}
[ "$keep" = --keep ] && shift
w=$(mktemp -d /tmp/apt-layer-vm.XXXXXX)
mount -t tmpfs -o size=14G tmpfs "$w"
cleanup() { cd /; [ "$keep" = --keep ] && { echo "kept $w"; return; }; umount -l "$w"; rmdir "$w"; }
trap cleanup EXIT
export OSTREE_SYSROOT_DEBUG=mutable-deployments
[ -x .build/debug/apt-layer ] || swift build --product apt-layer
t0=$(date +%s)
deb=${APT_LAYER_DEB:-}
if [ -z "$deb" ]; then
  deb=$(sh scripts/build-deb.sh "$w/deb")
  echo "== $(basename "$deb") built in $(( $(date +%s) - t0 )) s; lintian:"
  lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'root privileges' || true
fi
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
sh Tests/Fixtures/builders/make-debs.sh "$w/fx" >/dev/null
sh scripts/make-test-pki.sh "$w/pki" >/dev/null
ostree --repo="$w/repo" init --mode=bare-user
# The agent's configuration and certificates go into each image's /etc.
install -d -m 0755 "$w/etc/apt-layer"
install -d -m 0700 "$w/etc/apt-layer/tls"
install -m 0644 "$w/pki/server.crt" "$w/pki/ca.crt" "$w/etc/apt-layer/tls/"
install -m 0600 "$w/pki/server.key" "$w/etc/apt-layer/tls/"
cat > "$w/etc/apt-layer/agent.yaml" <<'YAML'
listen: "0.0.0.0:7443"
tls: { certificate: /etc/apt-layer/tls/server.crt, key: /etc/apt-layer/tls/server.key, client-ca: /etc/apt-layer/tls/ca.crt }
roles: { reader: reader, operator: operator, admin: admin }
boot-tries: 2
YAML

# image SUITE REF: composes deploy/treefiles/SUITE-vm.yaml with the .deb, writes $w/SUITE.raw.
image() {
  cp "deploy/treefiles/$1-vm.yaml" "$w/$1-vm.yaml"
  printf 'local-packages: [%s]\n' "$deb" >> "$w/$1-vm.yaml"
  # The treefile's relative keyring path starts at deploy/treefiles.
  sed -i "s|^keyring: \.\./|keyring: $here/deploy/|" "$w/$1-vm.yaml"
  t0=$(date +%s)
  .build/debug/apt-layer compose tree -q --repo "$w/repo" "$w/$1-vm.yaml"
  echo "== $1 base composed in $(( $(date +%s) - t0 )) s"
  t0=$(date +%s)
  # Serial console only, quiet: under TCG every line on a framebuffer console costs boot time.
  # 2.5 GiB free: the fleet mission's offline release keeps its bundle and image cache (~2 x 0.3 GB).
  .build/debug/apt-layer compose image -q --repo "$w/repo" --ref "$2" --etc "$w/etc" -o "$w/$1.raw" \
    --karg console=ttyS0,115200n8 --karg quiet --free-mib 2560
  echo "== $1 image written in $(( $(date +%s) - t0 )) s"
}

# distro SUITE REF: the distribution scenario on an image of SUITE.
distro() {
  t1=$(date +%s)
  image "$1" "$2"
  python3 Tests/Fixtures/system/vm-test.py --distro "$1" --image "$w/$1.raw" --pki "$w/pki" --debs "$w/fx/debs" \
    --work "$w/vm-$1" --repo "$w/repo" --ref "$2" || rc=1
  rm -f "$w/$1.raw"
  echo "== $1: composed, written and booted in $(( $(date +%s) - t1 )) s"
}

rc=0
case "${1:-}" in
  --distro)
    case "${2:-}" in
      trixie) distro trixie debian/trixie/x86_64/vm ;;
      noble) distro noble ubuntu/noble/x86_64/vm ;;
      *) echo "usage: scripts/vm-test.sh --distro trixie|noble" >&2; exit 2 ;;
    esac
    exit $rc ;;
esac
image bookworm debian/bookworm/x86_64/vm
# The image is hybrid (BIOS and UEFI): the BIOS scenario boots it; with --all (and
# --only-secure-boot) a pristine copy then boots under OVMF with Secure Boot enforced
# (Tests/Fixtures/system/vm_uefi.py). CI leaves that to the Ubuntu scenario below, which boots
# under Secure Boot through the same kind of chain and counts its boot the same way.
uefi=""
case "${1:-}" in
  --all | --only-secure-boot)
    cp --sparse=always "$w/bookworm.raw" "$w/disk-uefi.raw"
    uefi="--uefi-image $w/disk-uefi.raw" ;;
esac
# shellcheck disable=SC2086
python3 Tests/Fixtures/system/vm-test.py --image "$w/bookworm.raw" $uefi --pki "$w/pki" --debs "$w/fx/debs" \
  --work "$w/vm" --repo "$w/repo" --ref debian/bookworm/x86_64/vm "$@" || rc=1
rm -f "$w/bookworm.raw" "$w/disk-uefi.raw"
case "${1:-}" in
  --only-fleet | --only-secure-boot) ;;
  --all)
    distro trixie debian/trixie/x86_64/vm
    distro noble ubuntu/noble/x86_64/vm ;;
  *) distro noble ubuntu/noble/x86_64/vm ;;
esac
exit $rc
