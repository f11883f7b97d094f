#!/bin/sh
# Prints apt-layer's version: the one place it is kept is APTLayerVersion.current
# (Sources/APTLayerModel/Version.swift); the .deb, the docs' commands and the binaries take it from there.
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/APTLayerModel/Version.swift)
[ -n "$version" ] || { echo "error: no version in Sources/APTLayerModel/Version.swift" >&2; exit 1; }
echo "$version"
