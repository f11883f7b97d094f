#!/bin/bash
# The man pages and shell completions the .deb ships are generated from the argument parser
# (scripts/manpage.py, --generate-completion-script): every verb and the issue 11 options appear,
# the pages render, and bash completion completes verbs and options. Exits 1 naming what failed.
#   Tests/Fixtures/system/test_cli_docs.sh BIN_DIR
set -uo pipefail
bin=${1:?BIN_DIR}
here=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; failed=1; fi; }

python3 "$here/scripts/manpage.py" "$bin/apt-layer" 1 test > "$tmp/apt-layer.1"
python3 "$here/scripts/manpage.py" "$bin/apt-layerd" 8 test > "$tmp/apt-layerd.8"
for verb in status install uninstall upgrade deploy rebase rollback cleanup pin unpin kargs history cancel policy fleet compose; do
  check "man page has a section for $verb" "grep -q '^\\.SH \"\\?[A-Z ]*$(echo "$verb" | tr a-z A-Z)' '$tmp/apt-layer.1' || grep -qi '^\\.SS $verb\\b\\|apt\\\\-layer $verb' '$tmp/apt-layer.1'"
done
check "man page documents --unchanged-exit-77" "grep -q 'unchanged\\\\-exit\\\\-77' '$tmp/apt-layer.1'"
check "man page documents status -v/-b" "grep -q '\\\\-\\\\-verbose' '$tmp/apt-layer.1' && grep -q '\\\\-b' '$tmp/apt-layer.1'"
check "apt-layerd page documents --version" "grep -q '\\\\-\\\\-version' '$tmp/apt-layerd.8'"
if command -v groff >/dev/null; then
  check "the page renders without warnings" "groff -man -Tutf8 -ww '$tmp/apt-layer.1' 2>'$tmp/groff.err' >/dev/null && [ ! -s '$tmp/groff.err' ]"
fi

"$bin/apt-layer" --generate-completion-script bash > "$tmp/apt-layer.bash"
"$bin/apt-layer" --generate-completion-script zsh > "$tmp/_apt-layer"
"$bin/apt-layer" --generate-completion-script fish > "$tmp/apt-layer.fish"
check "bash completion parses" "bash -n '$tmp/apt-layer.bash'"
complete_words() {
  # Runs the generated completion function the way bash does for COMP_WORDS and prints COMPREPLY.
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _apt-layer apt-layer "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
    printf "%s\n" "${COMPREPLY[@]}"' _ "$tmp/apt-layer.bash" "$@"
}
check "bash completes the db verbs" "complete_words apt-layer db '' | grep -qx diff"
check "bash completes status -v" "complete_words apt-layer status --verb | grep -qx -- --verbose"
check "bash completes --unchanged-exit-77" "complete_words apt-layer install --unchanged | grep -qx -- --unchanged-exit-77"
check "zsh completion names the verbs" "grep -q \"'rollback:\" '$tmp/_apt-layer'"
check "fish completion names the verbs" "grep -q 'rollback' '$tmp/apt-layer.fish'"
exit $failed
