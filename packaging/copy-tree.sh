#!/bin/bash
# copy-tree.sh DEST -- copy this source tree to DEST as git would commit it:
# tracked and untracked files, not ignored ones such as build directories;
# files deleted in the work tree but still tracked are skipped. Outside a git
# checkout: everything but build* and .git. The package builds start from it.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DEST" >&2
    exit 2
fi
top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
mkdir -p "$1"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' file; do
            [ -e "$file" ] && printf '%s\0' "$file"
        done | tar --null -T - -cf -) | tar -xf - -C "$1"
else
    tar -C "$top" --exclude='./build*' --exclude='./.git' -cf - . | tar -xf - -C "$1"
fi
