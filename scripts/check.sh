#!/bin/sh
# The fast tier (`make check`): every suite tagged `.fast` — in process, no root, no mounts, no
# network — built and run in a few minutes warm. Swift Testing's tags are read from the sources
# (the `@Suite(…, .tags(.fast))` line and the type it annotates), since `swift test` filters by
# name only; a new suite joins the tier by carrying the tag, and no list is kept here.
set -eu
cd "$(dirname "$0")/.."
suites=$(awk '
  /@Suite\(.*\.tags\(.*\.fast/ { tagged = 1 }
  tagged && match($0, /(struct|class|enum) [A-Za-z0-9_]+/) {
    split(substr($0, RSTART, RLENGTH), w, " "); print w[2]; tagged = 0
  }' Tests/*/*.swift | sort -u | paste -sd'|' -)
[ -n "$suites" ] || { echo "check.sh: no suite is tagged .fast" >&2; exit 1; }
swift build --build-tests
swift test --skip-build --filter "\.($suites)(/|$)"
