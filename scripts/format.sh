#!/bin/sh
# Formats every hand-written Swift file with the committed .swift-format; the generated OpenAPI code
# (Sources/APTLayerAPI/Generated, scripts/openapi-generate.sh) stays byte for byte as generated.
#   scripts/format.sh          format in place
#   scripts/format.sh --check  exit 1 and name the files formatting would change (CI runs this)
#   scripts/format.sh --lint   report swift-format's lint findings
set -eu
cd "$(dirname "$0")/.."
files=$(find Sources Tests bench -name '*.swift' -not -path 'Sources/APTLayerAPI/Generated/*' 2>/dev/null | sort; echo Package.swift)
case "${1:-}" in
--lint) exec swift format lint $files ;;
--check)
  copy=$(mktemp -d /tmp/apt-layer-format.XXXXXX)
  trap 'rm -rf "$copy"' EXIT
  for f in $files; do mkdir -p "$copy/$(dirname "$f")" && cp "$f" "$copy/$f"; done
  cp .swift-format "$copy/"
  (cd "$copy" && swift format -i $files)
  changed=$(for f in $files; do cmp -s "$f" "$copy/$f" || echo "$f"; done)
  if [ -n "$changed" ]; then
    echo "format.sh: these files are not formatted (run scripts/format.sh):" >&2
    echo "$changed" >&2
    exit 1
  fi
  ;;
*) exec swift format -i $files ;;
esac
