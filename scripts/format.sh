#!/bin/sh
# Formats every hand-written Swift file with the committed .swift-format; the generated OpenAPI code
# (Sources/APTLayerAPI/Generated, scripts/openapi-generate.sh) stays byte for byte as generated.
#   scripts/format.sh          format in place
#   scripts/format.sh --lint   report what formatting would change
set -eu
cd "$(dirname "$0")/.."
files=$(find Sources Tests bench -name '*.swift' -not -path 'Sources/APTLayerAPI/Generated/*' 2>/dev/null; echo Package.swift)
if [ "${1:-}" = --lint ]; then exec swift format lint $files; fi
exec swift format -i $files
