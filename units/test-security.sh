#!/bin/bash
# test-security.sh -- the generated thintrimd.service keeps its sandbox.
#
#   1. `systemd-analyze security --offline=true` rates it at most
#      MAX_EXPOSURE (3.0; Debian 12's fstrim.service is 7.0);
#   2. `systemd-analyze verify` accepts it (no unknown or misspelt settings),
#      with ExecStart= pointed at the built thintrimd when there is one;
#   3. the settings FITRIM depends on are there, and nothing that would hide
#      filesystems from the daemon crept in.
#
# Needs no running systemd. Exit 77 (skip) when systemd-analyze is missing or
# too old to analyse a unit file offline (systemd < 250).
#
# Environment (set by meson): THINTRIMD_UNIT (the configured unit), THINTRIMD
# (the built daemon, optional), MAN_BUILDDIR (built man pages, optional).
set -uo pipefail

unit=${THINTRIMD_UNIT:?THINTRIMD_UNIT names the configured thintrimd.service}
max=${MAX_EXPOSURE:-3.0}
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed"
    exit 77
fi
if ! systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    echo "SKIP: this systemd-analyze cannot rate a unit file offline (needs systemd >= 250)"
    exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The unit under its real name, with ExecStart= on a binary that exists here
# (verify insists): the built daemon, or a stand-in before it is built.
daemon=${THINTRIMD:-}
[ -x "$daemon" ] || daemon=$(command -v true)
sed -e "s|^ExecStart=.*|ExecStart=$daemon|" "$unit" >"$work/thintrimd.service"

# 1. Exposure.
report=$(cd "$work" && systemd-analyze security --offline=true --no-pager thintrimd.service 2>&1)
echo "$report"
exposure=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for thintrimd.service: \([0-9.]*\).*/\1/p')
if [ -z "$exposure" ]; then
    fail "no overall exposure level in systemd-analyze's output"
elif awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e > m) }'; then
    fail "exposure $exposure is above $max"
else
    echo "exposure $exposure (limit $max)"
fi
# The same verdict through systemd-analyze's own threshold (tenths).
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 }')
if ! (cd "$work" && systemd-analyze security --offline=true --threshold="$threshold" \
        --no-pager thintrimd.service >/dev/null 2>&1); then
    fail "systemd-analyze security --threshold=$threshold rejects the unit"
fi

# 2. verify: unknown settings, bad values, missing binaries. Man pages are
# checked when they are built.
man=no
if [ -n "${MAN_BUILDDIR:-}" ] && [ -f "$MAN_BUILDDIR/thintrimd.8" ] && command -v man >/dev/null; then
    mkdir -p "$work/man/man1" "$work/man/man5" "$work/man/man8"
    for page in "$MAN_BUILDDIR"/*.[158]; do
        cp "$page" "$work/man/man${page##*.}/"
    done
    export MANPATH="$work/man"
    man=yes
fi
# busctl (ExecReload=) is part of systemd; verify looks it up.
if ! verify=$(cd "$work" && systemd-analyze verify --man="$man" --generators=no \
        thintrimd.service 2>&1); then
    fail "systemd-analyze verify: $verify"
elif [ -n "$verify" ]; then
    fail "systemd-analyze verify complains: $verify"
else
    echo "systemd-analyze verify: clean (man pages checked: $man)"
fi

# 3. Settings that carry the design (see units/meson.build for why).
expect() {
    grep -qx -- "$1" "$unit" || fail "missing: $1"
}
expect 'Type=notify'
expect 'BusName=org.thintrim.ThinTrim1'
expect 'StateDirectory=thintrim'
expect 'ConfigurationDirectory=thintrim'
expect 'CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_READ_SEARCH'
expect 'ProtectSystem=strict'
expect 'ProtectHome=read-only'
expect 'DeviceAllow=block-\* r'
# f2fs: a private writable clone of a read-only view (thintrimd(8), SANDBOX).
expect 'SystemCallFilter=open_tree mount_setattr'
expect 'DeviceAllow=/dev/mapper/control rw'
grep -q '^ExecStart=/.*/thintrimd$' "$unit" || fail "ExecStart= is not an absolute path to thintrimd"
# Each of these would hide mounted filesystems, or the devices' UUIDs, from
# the daemon.
for hiding in 'ProtectHome=yes' 'ProtectHome=tmpfs' 'PrivateDevices=yes' 'ProcSubset=pid' \
        'TemporaryFileSystem=' 'InaccessiblePaths=' 'RootDirectory=' 'RootImage='; do
    if grep -q "^$hiding" "$unit"; then
        fail "$hiding hides filesystems or devices from thintrimd"
    fi
done

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "thintrimd.service: all checks passed"
