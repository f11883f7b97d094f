#!/bin/sh
# Installs every system package the build, the tests and the demo need (Debian 12, as root).
set -eu
PACKAGES="make libostree-dev libarchive-dev skopeo docker-registry tar ostree bubblewrap mmdebstrap dpkg-dev apt-utils busybox-static systemd procps python3 python3-yaml python3-jsonschema python3-venv bc
  pkg-config gzip binutils libsystemd-dev libsqlite3-dev curl openssl ca-certificates util-linux nginx-light openssh-client prometheus
  qemu-system-x86 qemu-utils fdisk grub-pc-bin grub-common lintian gdb dosfstools mtools ovmf grub-emu distro-info-data gpg"
# shellcheck disable=SC2086
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES
fi
