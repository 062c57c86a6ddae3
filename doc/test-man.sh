#!/bin/bash
# test-man.sh -- the man pages build, render, and document what the programs
# actually have:
#   - every page renders with man(1) without groff warnings;
#   - thintrim(1) has an entry for every command (the contract's list and
#     whatever `thintrim --help` lists) and names every option that
#     `thintrim --help` and `thintrim COMMAND --help` list;
#   - thintrim(1) lists the exit codes 0, 1, 2, 32, 64;
#   - thintrimd(8) names every option of `thintrimd --help`, and every
#     MESSAGE_ID it quotes is one the daemon logs;
#   - thintrim.conf(5) documents every configuration key, and
#     conf/thintrim.conf shows each commented out with the same default;
#   - the pages named in the unit's Documentation= are built.
# Environment (set by meson): MAN_BUILDDIR, DOC_SRCDIR, PROJECT_SRCDIR,
# THINTRIMD_UNIT; THINTRIM and THINTRIMD when those programs are built.
set -uo pipefail

build=${MAN_BUILDDIR:?}
src=${DOC_SRCDIR:?}
top=${PROJECT_SRCDIR:?}
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# The rendered text of a page, hyphenation and adjustment off so that words
# and options can be grepped whole.
render() {
    MANWIDTH=200 man --nh --nj --warnings -l "$1" 2>"$1.warnings" | col -bx
}

declare -A text
for page in thintrim.1 thintrimd.8 thintrim.conf.5; do
    if [ ! -s "$build/$page" ]; then
        fail "$page was not built"
        text[$page]=''
        continue
    fi
    if command -v man >/dev/null && command -v col >/dev/null; then
        text[$page]=$(render "$build/$page")
        if [ -s "$build/$page.warnings" ]; then
            fail "$page: groff warns: $(cat "$build/$page.warnings")"
        fi
        rm -f "$build/$page.warnings"
    else
        # No man(1): grep the roff source, font escapes removed.
        text[$page]=$(sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' "$build/$page")
    fi
done

mentions() { # PAGE WORD: the rendered page contains WORD as a whole word
    grep -qwF -- "$2" <<<"${text[$1]}"
}

# --- thintrim(1) ---------------------------------------------------------------
commands=(status list stack trim doctor cancel suspend resume reload)
options=(--version --help --sysfs-root --mountinfo --fstab --all --json --bytes --no-wait
         --local --dry-run --minimum --rate --chunk)
if [ -n "${THINTRIM:-}" ] && [ -x "$THINTRIM" ]; then
    help=$("$THINTRIM" --help 2>&1)
    # CLI11 lists subcommands under "Subcommands:" as "  name  description".
    while read -r name; do
        commands+=("$name")
    done < <(sed -n '/^Subcommands:/I,/^$/p' <<<"$help" | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
    mapfile -t -O "${#options[@]}" options < <(grep -o -- '--[a-z][a-z-]*' <<<"$help")
    for command in $(printf '%s\n' "${commands[@]}" | sort -u); do
        if sub=$("$THINTRIM" "$command" --help 2>&1); then
            mapfile -t -O "${#options[@]}" options < <(grep -o -- '--[a-z][a-z-]*' <<<"$sub")
        fi
    done
else
    echo "thintrim not built: checking the contract's commands and options only"
fi
for command in $(printf '%s\n' "${commands[@]}" | sort -u); do
    # A COMMANDS entry: a line of the source starting with the bold name.
    grep -q "^\*$command\*" "$src/thintrim.1.scd" ||
        fail "thintrim(1) has no entry for the command '$command'"
    grep -q "^\*thintrim\*.*\*$command\*" "$src/thintrim.1.scd" ||
        fail "thintrim(1)'s SYNOPSIS does not show '$command'"
done
for option in $(printf '%s\n' "${options[@]}" | sort -u); do
    mentions thintrim.1 "$option" || fail "thintrim(1) does not mention $option"
done
for code in 0 1 2 32 64; do
    sed -n '/^# EXIT STATUS/,/^# /p' "$src/thintrim.1.scd" | grep -qx "\*$code\*" ||
        fail "thintrim(1) EXIT STATUS lacks $code"
done
for topic in 'discard=ignore' 'discard=unmap' 'hw_disk_discard' "discard='unmap'" \
        'DBUS_SYSTEM_BUS_ADDRESS' 'ext4' 'xfs' 'btrfs'; do
    grep -qF -- "$topic" <<<"${text[thintrim.1]}" || fail "thintrim(1) does not mention $topic"
done
grep -q '^# WARNING' "$src/thintrim.1.scd" || fail "thintrim(1) has no WARNING section"

# --- thintrimd(8) --------------------------------------------------------------
daemon_options=(--config --state-dir --log-level --version --sysfs-root --mountinfo --fstab)
if [ -n "${THINTRIMD:-}" ] && [ -x "$THINTRIMD" ]; then
    mapfile -t -O "${#daemon_options[@]}" daemon_options < <("$THINTRIMD" --help 2>&1 |
        grep -o -- '--[a-z][a-z-]*')
fi
for option in $(printf '%s\n' "${daemon_options[@]}" | sort -u); do
    mentions thintrimd.8 "$option" || fail "thintrimd(8) does not mention $option"
done
for topic in org.thintrim.ThinTrim1 'busctl tree' 'busctl call' 'busctl get-property' \
        STATE_DIRECTORY DBUS_SYSTEM_BUS_ADDRESS org.thintrim.ThinTrim1.manage; do
    grep -qF -- "$topic" <<<"${text[thintrimd.8]}" || fail "thintrimd(8) does not mention $topic"
done
log_h=$top/src/daemon/log.h
for id in $(grep -o '\b[0-9a-f]\{32\}\b' "$src/thintrimd.8.scd" | sort -u); do
    if [ -f "$log_h" ] && ! grep -q "$id" "$log_h"; then
        fail "thintrimd(8) quotes MESSAGE_ID $id, which src/daemon/log.h does not define"
    fi
done

# --- thintrim.conf(5) and conf/thintrim.conf ----------------------------------
# The keys: the daemon's table when it can be read, else the contract's list.
keys=$(sed -n 's/^ *{"\([A-Z][A-Za-z]*\)", "\([A-Z][A-Za-z]*\)", Syntax::.*/\1 \2/p' \
    "$top/src/core/config/config.cpp" 2>/dev/null)
if [ -z "$keys" ]; then
    keys='Schedule Interval
Schedule RandomizedDelay
Schedule BootDelay
Schedule FreedSpaceThreshold
Schedule CheckInterval
Trim MinimumExtent
Trim ChunkSize
Trim RateLimit
Filesystems Include
Filesystems Exclude
Filesystems Types
Metrics MetricsFile'
fi
conf=$top/conf/thintrim.conf
while read -r section key; do
    # In the page: an entry "*Key=*" under "# [Section]".
    # grep reads it all (not -q): a section longer than sed's 4 KiB buffer
    # would get sed a SIGPIPE, which pipefail counts as a missing entry.
    sed -n "/^# \[$section\]/,/^# [^[]*\$/p" "$src/thintrim.conf.5.scd" | grep -x "\*$key=\*" >/dev/null ||
        fail "thintrim.conf(5) has no entry for $key= in [$section]"
    # In the file: "#Key=default" under "[Section]".
    line=$(sed -n "/^\[$section\]/,/^\[/p" "$conf" | grep "^#$key=" | head -1)
    if [ -z "$line" ]; then
        fail "conf/thintrim.conf does not show #$key= in [$section]"
        continue
    fi
    default=${line#*=}
    # The page says "Default: *VALUE*." or "Default: empty." in the key's entry.
    documented=$(sed -n "/^\*$key=\*\$/,/^\*[A-Za-z]*=\*\$\|^# /p" "$src/thintrim.conf.5.scd" |
        tr '\n' ' ' | sed -n 's/.*Default:[[:space:]]*\(\*[^*]*\*\|empty\).*/\1/p' | tr -d '*')
    [ "$documented" = empty ] && documented=''
    [ "$documented" = "$default" ] ||
        fail "$key: conf/thintrim.conf says '$default', thintrim.conf(5) says '$documented'"
done <<<"$keys"

# --- Documentation= of the unit --------------------------------------------------
if [ -f "${THINTRIMD_UNIT:-}" ]; then
    for ref in $(sed -n 's/^Documentation=//p' "$THINTRIMD_UNIT"); do
        page=${ref#man:}
        page=${page%)}
        page=${page/(/.}
        [ -s "$build/$page" ] || fail "thintrimd.service names $ref, which is not built"
    done
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "man pages: all checks passed"
