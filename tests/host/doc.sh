#!/bin/bash
# doc.sh -- thintrim-host(1) and the bash completion cover what the program
# takes: every option `thintrim-host COMMAND --help` lists is in the man
# page and completed after the command; the page renders without groff
# warnings; commands and VMs (from --pve-dir/--libvirt-dir) are completed.
# Environment (set by meson): THINTRIM_HOST, THINTRIM_HOST_TEST_DATA,
# HOST_MAN_PAGE (the built page), COMPLETION_SCRIPT.
# Exit 77 without bash-completion.
set -uo pipefail

host=${THINTRIM_HOST:?}
data=${THINTRIM_HOST_TEST_DATA:?}
page=${HOST_MAN_PAGE:?}
script=${COMPLETION_SCRIPT:?}
framework=${BASH_COMPLETION_SCRIPT:-/usr/share/bash-completion/bash_completion}
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

[ -s "$page" ] || { echo "FAIL: $page was not built" >&2; exit 1; }
text=$(MANWIDTH=200 man --nh --nj -l "$page" 2>/dev/null | col -bx)
warnings=$(MANWIDTH=200 man --warnings -l "$page" 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "groff warnings: $warnings"

options_of() {
    "$host" "$@" --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}
for command in audit prove vzdump-hook; do
    for option in $(options_of "$command"); do
        grep -q -- "$option" <<<"$text" || fail "thintrim-host.1 does not document $command $option"
    done
done
for option in $(options_of); do
    grep -q -- "$option" <<<"$text" || fail "thintrim-host.1 does not document $option"
done

if [ ! -f "$framework" ]; then
    echo "SKIP: bash-completion is not installed ($framework)"
    [ "$failures" -eq 0 ] || exit 1
    exit 77
fi
# shellcheck disable=SC1090
source "$framework"
# shellcheck disable=SC1090
source "$script"
complete_line() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _thintrim_host
    printf '%s\n' "${COMPREPLY[@]}"
}
[ "$(complete_line thintrim-host '' | sort | tr '\n' ' ')" = "audit prove vzdump-hook " ] ||
    fail "commands: $(complete_line thintrim-host '')"
for command in audit prove vzdump-hook; do
    completed=$(complete_line thintrim-host "$command" -)
    for option in $(options_of "$command"); do
        [[ $option == --version ]] && continue
        grep -qx -- "$option" <<<"$completed" ||
            [[ " --pve-dir --libvirt-dir --proc " == *" $option "* ]] ||
            fail "completion of '$command -' lacks $option"
    done
done
vms=$(complete_line thintrim-host --pve-dir "$data/pve" --libvirt-dir "$data/libvirt" prove '' |
    sort | tr '\n' ' ')
[ "$vms" = "100 101 102 103 db2 web2 " ] || fail "VMs completed for prove: $vms"
[ "$(complete_line thintrim-host vzdump-hook backup- | sort | tr '\n' ' ')" = "backup-abort backup-end backup-start " ] ||
    fail "vzdump-hook phases: $(complete_line thintrim-host vzdump-hook backup-)"

[ "$failures" -eq 0 ] || exit 1
echo "host-doc: all checks passed"
