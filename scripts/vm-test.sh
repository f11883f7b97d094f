#!/bin/sh
# The VM tier (CI runs it after the other tiers): builds apt-layer's own .deb, composes a bootable
# bookworm base with it (deploy/treefiles/bookworm-vm.yaml: kernel, systemd, dracut + ostree-boot),
# writes a hybrid BIOS/UEFI disk image with `apt-layer compose image`, and boots it under qemu (TCG) to check
# staging, reboots, rollback, finalization locking, agent restarts and journald fields
# (Tests/Fixtures/system/vm-test.py), then the fleet mission under the packaged unit: a signed policy over
# HTTPS, releases over HTTP, FleetLock, health checks, rollback (Tests/Fixtures/system/vm_fleet.py), and
# last a copy of the image under OVMF with Secure Boot enforced (Tests/Fixtures/system/vm_uefi.py). Root.
#   scripts/vm-test.sh [--keep] [--only-fleet | --only-secure-boot]
set -eu
cd "$(dirname "$0")/.."
here=$(pwd)
sh scripts/deps.sh
keep=${1:-}
[ "$keep" = --keep ] && shift
w=$(mktemp -d /tmp/apt-layer-vm.XXXXXX)
mount -t tmpfs -o size=10G tmpfs "$w"
cleanup() { cd /; [ "$keep" = --keep ] && { echo "kept $w"; return; }; umount -l "$w"; rmdir "$w"; }
trap cleanup EXIT
export OSTREE_SYSROOT_DEBUG=mutable-deployments
[ -x .build/debug/apt-layer ] || swift build --product apt-layer
t0=$(date +%s)
deb=$(APT_LAYER_DEB_CONFIG=debug sh scripts/build-deb.sh "$w/deb")
echo "== $(basename "$deb") built in $(( $(date +%s) - t0 )) s; lintian:"
lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'root privileges' || true
sh Tests/Fixtures/builders/make-debs.sh "$w/fx" >/dev/null
sh scripts/make-test-pki.sh "$w/pki" >/dev/null
ostree --repo="$w/repo" init --mode=bare-user
cp deploy/treefiles/bookworm-vm.yaml "$w/vm.yaml"
printf 'local-packages: [%s]\n' "$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")" >> "$w/vm.yaml"
t0=$(date +%s)
.build/debug/apt-layer compose tree -q --repo "$w/repo" "$w/vm.yaml"
echo "== base composed in $(( $(date +%s) - t0 )) s"
# The agent's configuration and certificates go into the image's /etc.
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
t0=$(date +%s)
# Serial console only, quiet: under TCG every line on a framebuffer console costs boot time.
.build/debug/apt-layer compose image -q --repo "$w/repo" --ref debian/bookworm/x86_64/vm --etc "$w/etc" -o "$w/disk.raw" \
  --karg console=ttyS0,115200n8 --karg quiet
echo "== image written in $(( $(date +%s) - t0 )) s"
# The image is hybrid (BIOS and UEFI): the BIOS scenario boots it, then a pristine copy boots under
# OVMF with Secure Boot enforced (Tests/Fixtures/system/vm_uefi.py).
cp --sparse=always "$w/disk.raw" "$w/disk-uefi.raw"
python3 Tests/Fixtures/system/vm-test.py --image "$w/disk.raw" --uefi-image "$w/disk-uefi.raw" --pki "$w/pki" --debs "$w/fx/debs" \
  --work "$w/vm" --repo "$w/repo" --ref debian/bookworm/x86_64/vm "$@"
