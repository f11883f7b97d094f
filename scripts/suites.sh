#!/bin/sh
# Prints the test suites carrying a Swift Testing tag, one per line, read from the sources: the
# `@Suite(…, .tags(.TAG))` line and the type it annotates. `swift test` filters by name only, so
# scripts/check.sh and scripts/test.sh select tiers through this; no list of suites is kept by hand.
#   scripts/suites.sh fast     in process: no root, no mounts, no network (make check)
set -eu
cd "$(dirname "$0")/.."
tag=$1
awk -v tag="$tag" '
  /@Suite\(/ && index($0, ".tags(") && match($0, "\\.tags\\([^)]*\\." tag "[,) ]") { tagged = 1 }
  tagged && match($0, /(struct|class|enum) [A-Za-z0-9_]+/) {
    split(substr($0, RSTART, RLENGTH), w, " "); print w[2]; tagged = 0
  }' Tests/*/*.swift | sort -u
