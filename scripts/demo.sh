#!/bin/bash
# The demo: a sysroot on tmpfs built from a small base made here (busybox + a dpkg database), a
# local flat apt repository of tiny packages, and apt-layer layering one of them into a new
# deployment, then rolling back and forth. Leaves the sysroot up for you to try commands on;
# Ctrl-C unmounts it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/.build/debug/apt-layer
export OSTREE_SYSROOT_DEBUG=mutable-deployments
demo=$(mktemp -d /tmp/apt-layer-demo.XXXXXX)
mount -t tmpfs -o size=1G tmpfs "$demo"
cleanup() { cd /; umount -l "$demo" 2>/dev/null; rmdir "$demo" 2>/dev/null; echo; echo "Demo sysroot removed."; }
trap cleanup EXIT
trap 'exit 0' INT TERM
S=$demo/sysroot
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

"$here/Tests/Fixtures/make-debs.sh" "$demo/fixtures" >/dev/null
"$here/Tests/Fixtures/make-rootfs.sh" "$demo/rootfs" "$demo/fixtures/debs" "$demo/fixtures/repo" demo
step "$bin" init --sysroot "$S" --os debian
step "$bin" compose rootfs --sysroot "$S" --ref demo/base --version 1.0 --stub-kernel "$demo/rootfs"
step "$bin" rebase --sysroot "$S" demo/base
step "$bin" install --sysroot "$S" fixture-app fixture-user
step "$bin" status --sysroot "$S"
step "$bin" db diff --sysroot "$S"
step "$bin" rollback --sysroot "$S"
step "$bin" rollback --sysroot "$S"
set +e
step "$bin" install --sysroot "$S" --idempotent fixture-app; echo "(exit code $? = nothing changed)"
step "$bin" install --sysroot "$S" fixture-failing; echo "(exit code $?; default deployment unchanged)"
set -e
cat <<MSG

The demo sysroot stays up until you press Ctrl-C. Try, in another terminal:
  export OSTREE_SYSROOT_DEBUG=mutable-deployments
  $bin status --sysroot $S --json
  $bin install --sysroot $S fixture-vardir $demo/fixtures/debs/fixture-local-1.0.deb
  $bin override remove --sysroot $S fixture-removable
  $bin kargs --sysroot $S --append quiet
  $bin db list --sysroot $S 0
  $bin cleanup --sysroot $S --rollback
MSG
while true; do sleep 3600; done
