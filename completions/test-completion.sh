#!/bin/bash
# test-completion.sh -- completions/thintrim.bash completes what thintrim takes:
# commands, each command's options, and mount points of block-device
# filesystems (from a stand-in findmnt, so the test needs no mounts).
# Exit 77 without bash-completion (its _init_completion is needed).
set -uo pipefail

script=${COMPLETION_SCRIPT:?}
framework=${BASH_COMPLETION_SCRIPT:-/usr/share/bash-completion/bash_completion}
if [ ! -f "$framework" ]; then
    echo "SKIP: bash-completion is not installed ($framework)"
    exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/findmnt" <<'FAKE'
#!/bin/sh
printf '%s\n' '/ /dev/vda1' '/proc proc' '/mnt/my\x20data /dev/mapper/vg-data' \
    '/mnt/net server:/export' '/home /dev/vda2'
FAKE
chmod +x "$work/findmnt"
export PATH="$work:$PATH"

# shellcheck disable=SC1090
source "$framework"
# shellcheck disable=SC1090
source "$script"

failures=0
# expect "LINE BEING TYPED" "expected completions, space-separated, sorted"
expect() {
    local line=$1 want=$2
    COMP_LINE=$line
    COMP_POINT=${#line}
    read -r -a COMP_WORDS <<<"$line"
    [[ $line == *' ' ]] && COMP_WORDS+=('')
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _thintrim thintrim "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    local got
    got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd ' ')
    if [ "$got" != "$want" ]; then
        echo "FAIL: '$line' completes to '$got', expected '$want'" >&2
        failures=$((failures + 1))
    fi
}

expect 'thintrim ' 'cancel doctor list reload resume stack status suspend trim verify'
expect 'thintrim tr' 'trim'
expect 'thintrim s' 'stack status suspend'
expect 'thintrim --mo' '--mountinfo'
expect 'thintrim --mountinfo /x li' 'list'
expect 'thintrim list --' '--all --bytes --config --help --json'
expect 'thintrim trim --d' '--dry-run'
expect 'thintrim trim --no' '--no-ask-password --no-wait'
expect 'thintrim trim /' '/ /home /mnt/my\ data'
expect 'thintrim trim /h' '/home'
expect 'thintrim trim --rate ' ''
expect 'thintrim stack /m' '/mnt/my\ data'
expect 'thintrim stack /home ' ''
expect 'thintrim doctor --' '--config --help --json'
expect 'thintrim verify /h' '/home'
expect 'thintrim cancel --' '--help --no-ask-password'

# The completion knows every command and option the built thintrim has:
# a new option without its completion fails here.
if [ -n "${THINTRIM:-}" ]; then
    commands=$("$THINTRIM" --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 && NF { print $1 }' | sort | paste -sd ' ')
    [ -n "$commands" ] || { echo "FAIL: no commands in '$THINTRIM --help'" >&2; failures=$((failures + 1)); }
    expect 'thintrim ' "$commands"
    for command in $commands; do
        expect "thintrim $command --" "$("$THINTRIM" "$command" --help | grep -o -- '--[a-z-]*' | sort -u | paste -sd ' ')"
    done
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures completion(s) wrong" >&2
    exit 1
fi
echo "bash completion: all checks passed"
