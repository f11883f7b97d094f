#!/bin/sh
# The fast tier (`make check`): every suite tagged `.fast` — in process, no root, no mounts, no
# network — built and run in a few minutes warm. The tags are read from the sources
# (scripts/suites.sh), since `swift test` filters by name only; a new suite joins the tier by
# carrying the tag, and no list is kept here.
set -eu
cd "$(dirname "$0")/.."
suites=$(sh scripts/suites.sh fast | paste -sd'|' -)
[ -n "$suites" ] || { echo "check.sh: no suite is tagged .fast" >&2; exit 1; }
swift build --build-tests
swift test --skip-build --filter "\.($suites)(/|$)"
