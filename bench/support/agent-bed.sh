# Sourced by bench/agent.sh and bench/footprint.sh (bash; $here is the tree):
#   agent_bed WORK BIN [YAML-LINE...]
# The fixture sysroot WORK/sysroot (the fixture base deployed, fixture-lib layered) made with
# BIN/apt-layer, a test PKI in WORK/pki, and WORK/agent.yaml for an agent on 127.0.0.1:17443
# (metrics :17478, roles reader and operator, state in WORK/state, its local socket at
# $AGENT_BED_SOCKET if set, else none) with the YAML-LINEs appended.
# Also: mem PID, which prints "RSS anonymous PSS" in kB (smaps_rollup).
agent_bed() {
  local work=$1 bin=$2 S=$1/sysroot
  shift 2
  "$here/Tests/Fixtures/builders/make-debs.sh" "$work/fx" >/dev/null
  "$here/Tests/Fixtures/builders/make-rootfs.sh" "$work/rootfs" "$work/fx/debs" "$work/fx/repo" bench >/dev/null
  "$bin/apt-layer" init -q --sysroot "$S" --os debian >/dev/null
  "$bin/apt-layer" compose rootfs -q --sysroot "$S" --ref bench/base --version 1 --stub-kernel "$work/rootfs" >/dev/null
  "$bin/apt-layer" rebase -q --sysroot "$S" bench/base >/dev/null
  "$bin/apt-layer" install -q --sysroot "$S" fixture-lib >/dev/null
  "$here/scripts/make-test-pki.sh" "$work/pki" >/dev/null
  cat > "$work/agent.yaml" <<YAML
listen: "127.0.0.1:17443"
metrics-listen: "127.0.0.1:17478"
tls: { certificate: $work/pki/server.crt, key: $work/pki/server.key, client-ca: $work/pki/ca.crt }
roles: { reader: reader, operator: operator }
sysroot: $S
os: debian
state-directory: $work/state
socket: "${AGENT_BED_SOCKET:-}"
YAML
  local line
  for line in "$@"; do echo "$line" >> "$work/agent.yaml"; done
}

mem() { awk '/^Rss:/ {r=$2} /^Anonymous:/ {a=$2} /^Pss:/ {p=$2} END {print r, a, p}' "/proc/$1/smaps_rollup"; }
