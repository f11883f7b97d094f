#!/bin/sh
# Boots a container on an OSTree sysroot's default deployment so that libostree (2022.7) sees a
# *booted* system: staging (`ostree_sysroot_stage_tree*`), /run/ostree/staged-deployment,
# `ostree admin finalize-staged` and booted/pending/rollback status all take their real paths.
#
#   boot-container.sh [OPTIONS] SYSROOT STATEDIR [--] COMMAND [ARG...]
#       One boot: runs COMMAND (as root, cwd /) in a container booted on SYSROOT's default
#       deployment, with a fresh /run (STATEDIR/run-N, N = previous boot + 1). Exits with
#       COMMAND's status, or, when COMMAND rebooted, with `ostree admin finalize-staged`'s.
#       Start the next boot by calling the script again.
#   boot-container.sh which SYSROOT
#       Prints the deployment the bootloader would boot next (what the next boot will choose),
#       relative to SYSROOT, e.g. ostree/deploy/debian/deploy/CHECKSUM.0
#   boot-container.sh last STATEDIR
#       Prints "N DEPLOYMENT reboot RC" or "N DEPLOYMENT exit RC" for the last boot.
#
# OPTIONS
#   -b PATH[:DEST]  bind a host path read-only (DEST defaults to PATH); repeatable. Use it for
#                   the apt-layer binary's directory and the fixture apt repository. DEST must
#                   not lie under /etc (a mount point there becomes an /etc change that
#                   finalize-staged merges into the next deployment) nor under /var, /opt, /home,
#                   /root, /srv, /mnt (they are the persistent stateroot /var).
#   -B PATH[:DEST]  likewise, read-write.
#   -e NAME=VALUE   set an environment variable in the container; repeatable.
#   --fallback      boot the second entry, as a bootloader that falls back after a failed boot
#                   would (the default entry stays the default)
#   --host-usr      bind the host /usr as /usr unchanged (default: an overlay of the host /usr
#                   over the deployment's /usr, so host tools run and the deployment's own files,
#                   layered packages' included, are visible where the host has no such file).
#
# Inside the container:
#   /run/harness/reboot      what shutdown does: `ostree admin finalize-staged` (as
#                            ostree-finalize-staged.service would), then ends every process in
#                            the container. Its log is /run/harness/finalize.log.
#   /run/harness/deployment  the booted deployment, relative to the sysroot; /run/harness/boot: N
#   Layout: / = the deployment directory (bind, so stat("/") matches its dev/ino), /sysroot = the
#   sysroot, /boot = /sysroot/boot, /var = the stateroot's var (after its tmpfiles.d ran, as
#   systemd-tmpfiles would at boot), /usr = see --host-usr, /run = STATEDIR/run-N holding
#   ostree-booted, /proc/cmdline = the boot entry's options (ostree=...), /tmp a tmpfs, /dev
#   minimal, /sys read-only, /opt/swift (if the host has it) read-only; all capabilities (libostree
#   unshares a mount namespace, apt-layer runs bwrap); own pid namespace, shared network.
#   OSTREE_SYSROOT_DEBUG defaults to mutable-deployments.
#
# Needs: root, bwrap (>= 0.8), unshare (util-linux), systemd-tmpfiles (optional), overlayfs. All
# mounts are made in a private mount namespace and all processes live in a private pid namespace,
# so nothing outlives a boot except files under STATEDIR and the sysroot.
set -eu

me=$(readlink -f "$0")
die() { echo "boot-container: $*" >&2; exit 125; }

# The deployment the bootloader picks: the BLS entry with the highest "version" (libostree's own
# order, compare_boot_loader_configs), its ostree= argument resolved inside the sysroot; with RANK 2
# the next one (what a bootloader falls back to). Prints "DEPLOYMENT<TAB>ENTRY-FILE<TAB>OPTIONS".
boot_entry() {
  s=$1 rank=${2:-1} tab=$(printf '\t')
  best=$(for e in "$s"/boot/loader/entries/*.conf; do
    [ -f "$e" ] || continue
    printf '%s\t%s\n' "$(sed -n 's/^version[[:space:]]*//p' "$e" | head -n1)" "$e"
  done | sort -t "$tab" -k1,1Vr | sed -n "${rank}p" | cut -f2)
  [ -n "$best" ] || die "no boot entry of rank $rank in $s/boot/loader/entries"
  opts=$(sed -n 's/^options[[:space:]]*//p' "$best" | head -n1)
  link=$(printf '%s\n' "$opts" | tr ' ' '\n' | sed -n 's/^ostree=//p' | head -n1)
  [ -n "$link" ] || die "no ostree= in $best"
  dir=$(readlink -f "$s/$link") || die "cannot resolve $link"
  case $dir in "$s"/ostree/deploy/*/deploy/*) ;; *) die "$link resolves outside $s/ostree/deploy: $dir" ;; esac
  [ -d "$dir" ] || die "$link: no deployment directory $dir"
  printf '%s\t%s\t%s\n' "${dir#"$s"/}" "$best" "$opts"
}

case ${1:-} in
which)
  [ $# -eq 2 ] || die "usage: boot-container.sh which SYSROOT"
  s=$(readlink -f "$2"); e=$(boot_entry "$s") || exit 125; printf '%s\n' "$e" | cut -f1; exit 0 ;;
last)
  [ $# -eq 2 ] || die "usage: boot-container.sh last STATEDIR"
  cat "$2/last"; exit 0 ;;
__stage2)
  # Runs in the private mount namespace made below: assemble the tree and exec bwrap.
  shift
  s=$1 st=$2 n=$3 dep=$4 usrmode=$5; shift 5
  [ "${1:-}" = -- ] && shift
  k=$#   # COMMAND's words; the bwrap arguments are appended after them and rotated in front
  run=$st/run-$n d=$s/$dep osname=${dep#ostree/deploy/}; osname=${osname%%/*}
  mkdir -p "$st/mnt/sysroot" "$st/mnt/usr"
  # /sysroot: a non-recursive bind, so the mounts below (on the deployment) do not show in it,
  # as on a real host where / and /sysroot are separate mounts of the same filesystem.
  mount --bind "$s" "$st/mnt/sysroot"
  # /var: the stateroot's, as ostree-prepare-root mounts it; then the deployment's tmpfiles.d
  # (systemd-tmpfiles at boot) so /var/opt, /var/lib/dpkg → ... and the like exist.
  mount --bind "$s/ostree/deploy/$osname/var" "$d/var"
  if ls "$d"/usr/lib/tmpfiles.d/*.conf >/dev/null 2>&1; then
    if command -v systemd-tmpfiles >/dev/null; then
      systemd-tmpfiles --create --boot --root="$d" "$d"/usr/lib/tmpfiles.d/*.conf >"$run/harness/tmpfiles.log" 2>&1 ||
        echo "boot-container: systemd-tmpfiles failed (see $run/harness/tmpfiles.log)" >&2
    else
      echo "boot-container: no systemd-tmpfiles; /var not populated from tmpfiles.d" >&2
    fi
  fi
  if [ "$usrmode" = overlay ]; then
    mount -t overlay overlay -o "ro,lowerdir=/usr:$d/usr" "$st/mnt/usr"
  else
    mount --bind /usr "$st/mnt/usr"
  fi
  mkdir -p "$d/var/opt"   # mount point for /opt/swift (normally made by the tmpfiles above)
  set -- "$@" bwrap --die-with-parent --unshare-pid --cap-add ALL \
    --bind "$d" / \
    --bind "$st/mnt/sysroot" /sysroot \
    --bind "$s/boot" /boot \
    --ro-bind "$st/mnt/usr" /usr \
    --proc /proc --ro-bind "$run/harness/cmdline" /proc/cmdline \
    --dev /dev --ro-bind /sys /sys \
    --bind "$run" /run \
    --tmpfs /tmp
  # The overlay shows the host's os-release; show the booted deployment's, as /etc/os-release does.
  if [ "$usrmode" = overlay ] && [ -f "$d/usr/lib/os-release" ] && [ -f /usr/lib/os-release ]; then
    set -- "$@" --ro-bind "$d/usr/lib/os-release" /usr/lib/os-release
  fi
  if [ -d /opt/swift ]; then set -- "$@" --ro-bind /opt/swift /opt/swift; fi
  while IFS= read -r b; do
    [ -n "$b" ] || continue
    mode=${b%% *} b=${b#* } src=${b%%:*} dst=${b#*:}
    set -- "$@" "$mode" "$src" "$dst"
  done <"$run/harness/binds"
  set -- "$@" --chdir / /run/harness/init
  while [ "$k" -gt 0 ]; do set -- "$@" "$1"; shift; k=$((k - 1)); done
  exec "$@"
  ;;
esac

# ---- one boot ----
usrmode=overlay binds= envs= rank=1
while [ $# -gt 0 ]; do
  case $1 in
  -b|-B) [ $# -ge 2 ] || die "$1 needs PATH"
    case $2 in *:*) p=$2 ;; *) p=$2:$2 ;; esac
    [ "$1" = -b ] && m=--ro-bind || m=--bind
    binds="$binds$m $(readlink -f "${p%%:*}"):${p#*:}
"; shift 2 ;;
  -e) [ $# -ge 2 ] || die "-e needs NAME=VALUE"; envs="$envs$2
"; shift 2 ;;
  --host-usr) usrmode=host; shift ;;
  --fallback) rank=2; shift ;;
  --) break ;;
  -*) die "unknown option $1" ;;
  *) break ;;
  esac
done
[ $# -ge 2 ] || die "usage: boot-container.sh [-b PATH[:DEST]] [-B PATH[:DEST]] [-e N=V] [--host-usr] SYSROOT STATEDIR [--] COMMAND..."
[ "$(id -u)" = 0 ] || die "must run as root"
s=$(readlink -f "$1"); st=$2; shift 2
[ "${1:-}" = -- ] && shift
[ $# -ge 1 ] || die "no COMMAND"
[ -d "$s/ostree/repo" ] || die "$s is not an OSTree sysroot"
# libostree freezes (FIFREEZE) the filesystem holding /boot when it writes deployments; never let
# that be the host's root filesystem.
fstype=$(findmnt -n -o FSTYPE --target "$s/boot")
[ "$fstype" = tmpfs ] || [ "${BOOT_CONTAINER_ANY_FS:-}" = 1 ] ||
  die "$s/boot is on $fstype, not tmpfs (deploys freeze that filesystem); set BOOT_CONTAINER_ANY_FS=1 to override"
mkdir -p "$st"; st=$(readlink -f "$st")

entry=$(boot_entry "$s" "$rank")
dep=$(printf '%s\n' "$entry" | cut -f1)
opts=$(printf '%s\n' "$entry" | cut -f3-)

# Boot number: one more than the highest run-N so far; its /run starts empty.
n=$(( $(ls -d "$st"/run-* 2>/dev/null | sed 's/.*run-//' | sort -n | tail -n1) + 1 ))
run=$st/run-$n
rm -rf "$run"; mkdir -p "$run/harness"
: >"$run/ostree-booted"                       # what ostree-prepare-root leaves for userspace
printf '%s\n' "$opts" >"$run/harness/cmdline"
printf '%s\n' "$dep" >"$run/harness/deployment"
printf '%s\n' "$n" >"$run/harness/boot"
printf '%s' "$binds" >"$run/harness/binds"

# The container's first process: sets the environment, runs COMMAND.
{
  echo '#!/bin/sh'
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8'
  echo "export OSTREE_SYSROOT_DEBUG='${OSTREE_SYSROOT_DEBUG:-mutable-deployments}'"
  printf '%s' "$envs" | while IFS= read -r e; do
    [ -n "$e" ] && printf "export '%s'\n" "$(printf '%s' "$e" | sed "s/'/'\\\\''/g")"
  done
  echo 'exec "$@"'
} >"$run/harness/init"
sed -n 's/^export /export /p' "$run/harness/init" >"$run/harness/env"
# Shutdown: finalize the staged deployment like ostree-finalize-staged.service (ExecStop), then
# end every process in the container's pid namespace (never outside it: pid 1 must be bwrap's).
cat >"$run/harness/reboot" <<'EOF'
#!/bin/sh
[ "$(cat /proc/1/comm)" = bwrap ] || { echo "reboot: not inside boot-container" >&2; exit 1; }
# Shutdown runs with the boot's environment (as systemd's units do), not the caller's: a caller
# that cleared its environment must not make finalize-staged mark the deployment immutable.
. /run/harness/env
# finalize-staged reports "not finalizing" only to the journal; record what it will see.
{ [ -e /run/ostree/staged-deployment ] && echo "harness: staged" || echo "harness: nothing staged"
  [ -e /run/ostree/staged-deployment-locked ] && echo "harness: finalization locked"; } >/run/harness/finalize.log
ostree admin finalize-staged >>/run/harness/finalize.log 2>&1; rc=$?
echo "$rc" >/run/harness/rebooted
sync
kill -TERM -1 2>/dev/null; sleep 0.2; kill -KILL -1 2>/dev/null
exit "$rc"
EOF
chmod 755 "$run/harness/init" "$run/harness/reboot"

# Stage 2 (below, in a private mount namespace) assembles the tree and execs bwrap. If this
# script is signalled, bwrap goes too (and with it, --die-with-parent, the whole container).
# sh starts a background job with SIGINT/SIGQUIT ignored; COMMAND must not inherit that.
env --default-signal=INT,QUIT -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM="${TERM:-dumb}" \
  unshare --mount --propagation private "$me" __stage2 "$s" "$st" "$n" "$dep" "$usrmode" -- "$@" &
pid=$! sig=
trap 'sig=TERM; kill -TERM $pid 2>/dev/null' TERM HUP
trap 'sig=INT; kill -TERM $pid 2>/dev/null' INT
rc=0; wait $pid || rc=$?
while kill -0 $pid 2>/dev/null; do wait $pid || rc=$?; done
trap - TERM HUP INT
if [ -n "$sig" ]; then
  echo "$n $dep killed $sig" >"$st/last"; exit 130
elif [ -f "$run/harness/rebooted" ]; then
  rc=$(cat "$run/harness/rebooted")
  echo "$n $dep reboot $rc" >"$st/last"
  [ "$rc" = 0 ] || { echo "boot-container: finalize-staged failed ($rc):" >&2; cat "$run/harness/finalize.log" >&2; }
else
  echo "$n $dep exit $rc" >"$st/last"
fi
exit "$rc"
