#!/bin/sh
# Installs every system package the build, the tests and the demo need (Debian 12, as root).
set -eu
PACKAGES="make libostree-dev ostree bubblewrap mmdebstrap dpkg-dev apt-utils busybox-static systemd procps python3 python3-yaml python3-jsonschema python3-venv bc
  pkg-config gzip binutils libsystemd-dev libsqlite3-dev curl openssl ca-certificates util-linux"
# shellcheck disable=SC2086
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES
fi
# schemathesis (PyPI; SchemathesisTests runs it against the agent) in a virtual environment of
# Debian's python3, pinned, under .build/ (not committed).
ST_VERSION=4.32.5
ST=$(dirname "$0")/../.build/schemathesis
if ! "$ST/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  rm -rf "$ST"
  /usr/bin/python3 -m venv "$ST"
  "$ST/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
