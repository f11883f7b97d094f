#!/bin/sh
# Builds the tiny fixture .debs and a flat apt repository the tests layer from.
#   make-debs.sh OUT
# OUT/debs/*.deb      every fixture package (some only for local install or for the base)
# OUT/repo/           flat repository (Packages, Release) with the repository packages, version 1
# OUT/bad/            corrupt.deb (truncated) and escape.deb (a path that leaves the root)
set -eu
out=$1
mkdir -p "$out/debs" "$out/repo" "$out/bad" "$out/src"

# pkg NAME VERSION [DEPENDS] -- creates $src/NAME-VERSION as a package tree; files added by caller.
pkg() {
  d="$out/src/$1-$2"
  rm -rf "$d"; mkdir -p "$d/DEBIAN"
  {
    echo "Package: $1"; echo "Version: $2"; echo "Architecture: all"
    echo "Maintainer: apt-layer tests <tests@localhost>"
    [ -n "${3:-}" ] && echo "Depends: $3"
    echo "Description: apt-layer test fixture $1"
  } > "$d/DEBIAN/control"
  echo "$d"
}
build() { dpkg-deb --root-owner-group -Zgzip --build "$1" "$out/debs/$(basename "$1").deb" >/dev/null; }

d=$(pkg fixture-lib 1.0); mkdir -p "$d/usr/lib/fixture"; echo "lib 1.0" > "$d/usr/lib/fixture/lib.txt"; build "$d"

for v in 1.0 2.0; do
  d=$(pkg fixture-app $v fixture-lib); mkdir -p "$d/usr/bin"
  printf '#!/bin/sh\necho "fixture-app %s"\n' $v > "$d/usr/bin/fixture-app"; chmod 755 "$d/usr/bin/fixture-app"; build "$d"
done

d=$(pkg fixture-conf 1.0); mkdir -p "$d/etc"; echo "setting=default" > "$d/etc/fixture-conf.conf"
echo /etc/fixture-conf.conf > "$d/DEBIAN/conffiles"; build "$d"

d=$(pkg fixture-vardir 1.0); mkdir -p "$d/usr/share/doc/fixture-vardir"; echo doc > "$d/usr/share/doc/fixture-vardir/README"
printf '#!/bin/sh\nset -e\nmkdir -p /var/lib/fixture-vardir/data\necho state > /var/lib/fixture-vardir/state.txt\n' > "$d/DEBIAN/postinst"
chmod 755 "$d/DEBIAN/postinst"; build "$d"

# Creates a system user the way `adduser --system --group` does (the fast tier's busybox base has no
# adduser applet; the realistic tier runs Debian's real adduser).
d=$(pkg fixture-user 1.0); mkdir -p "$d/usr/share/doc/fixture-user"; echo doc > "$d/usr/share/doc/fixture-user/README"
cat > "$d/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
grep -q '^fixtured:' /etc/group || echo 'fixtured:x:901:' >> /etc/group
grep -q '^fixtured:' /etc/gshadow || echo 'fixtured:!::' >> /etc/gshadow
grep -q '^fixtured:' /etc/passwd || echo 'fixtured:x:901:901::/nonexistent:/usr/sbin/nologin' >> /etc/passwd
grep -q '^fixtured:' /etc/shadow || echo 'fixtured:!:19000::::::' >> /etc/shadow
SH
chmod 755 "$d/DEBIAN/postinst"; build "$d"

d=$(pkg fixture-failing 1.0); mkdir -p "$d/usr/share/doc/fixture-failing"; echo doc > "$d/usr/share/doc/fixture-failing/README"
printf '#!/bin/sh\necho "fixture-failing: refusing to configure" >&2\nexit 1\n' > "$d/DEBIAN/postinst"; chmod 755 "$d/DEBIAN/postinst"; build "$d"

d=$(pkg fixture-slow 1.0); mkdir -p "$d/usr/share/doc/fixture-slow"; echo doc > "$d/usr/share/doc/fixture-slow/README"
printf '#!/bin/sh\necho "fixture-slow: configuring" >&2\nsleep 60\n' > "$d/DEBIAN/postinst"; chmod 755 "$d/DEBIAN/postinst"; build "$d"

d=$(pkg fixture-conflict 1.0); mkdir -p "$d/usr/share/fixture-base"; echo "not yours" > "$d/usr/share/fixture-base/README"; build "$d"

d=$(pkg fixture-local 1.0); mkdir -p "$d/usr/share/fixture-local"; echo local > "$d/usr/share/fixture-local/data"; build "$d"

d=$(pkg fixture-broken 1.0 "fixture-missing (>= 9)"); mkdir -p "$d/usr/share/fixture-broken"; echo x > "$d/usr/share/fixture-broken/x"; build "$d"

d=$(pkg linux-image-6.1.0-fixture 1.0); mkdir -p "$d/usr/share/doc/linux-image-6.1.0-fixture"; echo k > "$d/usr/share/doc/linux-image-6.1.0-fixture/README"; build "$d"

# A kernel pulled in as a dependency, and a package whose install would remove a base package
# (both refused by the plan guard before dpkg runs).
d=$(pkg fixture-kernel-dep 1.0 linux-image-6.1.0-fixture); mkdir -p "$d/usr/share/fixture-kernel-dep"; echo x > "$d/usr/share/fixture-kernel-dep/x"; build "$d"
d=$(pkg fixture-replacer 1.0); echo "Conflicts: fixture-removable" >> "$d/DEBIAN/control"
mkdir -p "$d/usr/share/fixture-replacer"; echo x > "$d/usr/share/fixture-replacer/x"; build "$d"

# Turns a base directory into a symlink and a base file (under /etc) into a directory, which
# overlayfs records without any marker (LayeringTests compares overlay and full-checkout builds).
d=$(pkg fixture-reshape 1.0); mkdir -p "$d/usr/share/doc/fixture-reshape"; echo doc > "$d/usr/share/doc/fixture-reshape/README"
printf '#!/bin/sh\nset -e\nrm -rf /usr/share/fixture-base\nln -s doc /usr/share/fixture-base\nrm -f /etc/base-note\nmkdir /etc/base-note\necho reshaped > /etc/base-note/inner\n' > "$d/DEBIAN/postinst"
chmod 755 "$d/DEBIAN/postinst"; build "$d"

# Kernel modules (SecureBootModulesTests): unsigned; ending with the kernel's signature marker;
# signed and xz-compressed; and a package that builds its modules with DKMS (a stand-in `dkms`).
m=usr/lib/modules/0.0.0-apt-layer-stub/extra
d=$(pkg fixture-module 1.0); mkdir -p "$d/$m"; head -c 2048 /dev/urandom > "$d/$m/fixture.ko"; build "$d"
d=$(pkg fixture-module-signed 1.0); mkdir -p "$d/$m"
{ head -c 2048 /dev/urandom; printf '~Module signature appended~\n'; } > "$d/$m/fixture-signed.ko"; build "$d"
d=$(pkg fixture-module-xz 1.0); mkdir -p "$d/$m"
{ head -c 2048 /dev/urandom; printf '~Module signature appended~\n'; } | xz > "$d/$m/fixture-xz.ko.xz"; build "$d"
d=$(pkg dkms 1.0); mkdir -p "$d/usr/share/doc/dkms"; echo "stand-in" > "$d/usr/share/doc/dkms/README"; build "$d"
d=$(pkg fixture-dkms 1.0 dkms); mkdir -p "$d/usr/src/fixture-1.0"; echo "PACKAGE_NAME=fixture" > "$d/usr/src/fixture-1.0/dkms.conf"; build "$d"

# A service its postinst enables, as deb-systemd-helper does (apply-live's --start: ApplyLiveTests,
# the VM tier): a oneshot that leaves /run/fixture-live when it ran.
d=$(pkg fixture-service 1.0); mkdir -p "$d/usr/lib/systemd/system"
printf '[Unit]\nDescription=apt-layer fixture service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c "echo started > /run/fixture-live"\n[Install]\nWantedBy=multi-user.target\n' \
  > "$d/usr/lib/systemd/system/fixture-live.service"
printf '#!/bin/sh\nset -e\nmkdir -p /etc/systemd/system/multi-user.target.wants\nln -sf /lib/systemd/system/fixture-live.service /etc/systemd/system/multi-user.target.wants/fixture-live.service\n' > "$d/DEBIAN/postinst"
chmod 755 "$d/DEBIAN/postinst"; build "$d"

# Base-image packages (installed into the fast tier's base by make-rootfs.sh).
d=$(pkg fixture-base 1.0); mkdir -p "$d/usr/share/fixture-base"; echo base > "$d/usr/share/fixture-base/README"; build "$d"
d=$(pkg fixture-removable 1.0); mkdir -p "$d/usr/share/fixture-removable"; echo removable > "$d/usr/share/fixture-removable/README"; build "$d"

# Repository: version 1 of everything except local-only and base packages.
for f in "$out"/debs/*.deb; do
  case $(basename "$f") in
    fixture-local-*|fixture-base-*|fixture-removable-*|fixture-app-2.0.deb) ;;
    *) cp "$f" "$out/repo/" ;;
  esac
done
"$(dirname "$0")/index-repo.sh" "$out/repo"

# Bad packages.
cp "$out/debs/fixture-local-1.0.deb" "$out/bad/corrupt.deb"
truncate -s $(( $(stat -c %s "$out/bad/corrupt.deb") * 4 / 5 )) "$out/bad/corrupt.deb"
e="$out/src/escape"; rm -rf "$e"; mkdir -p "$e"
printf 'Package: fixture-escape\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@localhost>\nDescription: escapes\n' > "$e/control"
python3 - "$e" <<'PY'
import io, sys, tarfile
e = sys.argv[1]
with tarfile.open(f"{e}/control.tar.gz", "w:gz") as t:
    t.add(f"{e}/control", arcname="./control")
with tarfile.open(f"{e}/data.tar.gz", "w:gz") as t:
    data = b"escaped\n"
    info = tarfile.TarInfo("./../../escaped.txt"); info.size = len(data)
    t.addfile(info, io.BytesIO(data))
PY
echo "2.0" > "$e/debian-binary"
(cd "$e" && ar rc "$out/bad/escape.deb" debian-binary control.tar.gz data.tar.gz)
