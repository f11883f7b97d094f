#!/bin/sh
# Builds the fast tier's base root filesystem: busybox-static plus a dpkg database holding the
# fixture base packages, with an apt source pointing at a flat repository.
#   make-rootfs.sh ROOTFS DEBS_DIR REPO_DIR [VERSION_NOTE]
set -eu
r=$1 debs=$2 repo=$3 note=${4:-1}
mkdir -p "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib" "$r/usr/lib64" "$r/etc/apt/sources.list.d" "$r/etc/apt/apt.conf.d" \
  "$r/etc/apt/preferences.d" "$r/etc/apt/trusted.gpg.d" "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" \
  "$r/var/lib/dpkg/triggers" "$r/var/cache/debconf" "$r/var/log" "$r/boot" "$r/tmp" "$r/root" "$r/home"
for l in bin sbin lib lib64; do ln -sfn "usr/$l" "$r/$l"; done
cp /bin/busybox "$r/usr/bin/busybox"
for a in sh ls cat echo mkdir rm cp mv chmod chown ln adduser addgroup id grep sed true false test touch env printf; do
  ln -sf busybox "$r/usr/bin/$a"
done
printf 'ID=debian\nNAME="apt-layer test base"\nPRETTY_NAME="apt-layer test base %s"\nVERSION_ID=12\n' "$note" > "$r/usr/lib/os-release"
ln -sf ../usr/lib/os-release "$r/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
printf 'root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n' > "$r/etc/group"
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$r/etc/shadow"
printf 'root:*::\nshadow:*::\nnogroup:*::\n' > "$r/etc/gshadow"
chmod 640 "$r/etc/shadow" "$r/etc/gshadow"; chgrp 42 "$r/etc/shadow" "$r/etc/gshadow"
echo "base-note $note" > "$r/etc/base-note"
echo "127.0.0.1 localhost" > "$r/etc/hosts"
touch "$r/var/lib/dpkg/status" "$r/var/lib/dpkg/available"
echo "deb [trusted=yes] file:$repo ./" > "$r/etc/apt/sources.list.d/fixture.list"
dpkg --root="$r" --admindir="$r/var/lib/dpkg" --force-not-root --log=/dev/null -i \
  "$debs/fixture-base-1.0.deb" "$debs/fixture-removable-1.0.deb" >/dev/null
