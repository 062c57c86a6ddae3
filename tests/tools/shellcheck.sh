#!/bin/bash
# Usage: shellcheck.sh SRCDIR. Every shell script of the project passes
# `shellcheck -S warning`: the *.sh files and the extensionless scripts with a
# shell shebang. Lists the tracked files with git; without git (a tarball),
# finds them, leaving out build directories. Exit 77 without shellcheck.
set -euo pipefail
src=${1:?usage: shellcheck.sh SRCDIR}
command -v shellcheck >/dev/null || { echo "SKIP: shellcheck is not installed"; exit 77; }
cd "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files)
else
    files=$(find . -type f -not -path '*/build*' -not -path './.git/*' -printf '%P\n')
fi
scripts=()
while IFS= read -r file; do
    [ -f "$file" ] || continue
    if [[ $file == *.sh ]] || head -c 64 "$file" | grep -q '^#!.*\(bash\|/sh\)'; then
        scripts+=("$file")
    fi
done <<<"$files"
[ ${#scripts[@]} -gt 0 ] || { echo "FAIL: no shell scripts found under $src" >&2; exit 1; }
# All at once: a script sourced by another is checked with its users.
shellcheck -S warning "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts, no warnings"
