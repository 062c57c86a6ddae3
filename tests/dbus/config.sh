#!/bin/bash
# thintrimd and bad input it did not choose: an invalid configuration at start
# (refuses to start, names file and line), Reload with a broken drop-in
# (InvalidConfig, the old configuration stays), SIGHUP, and a corrupt state
# file (moved aside, the daemon runs with an empty history).
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../lib/loopfs.sh
source "$here/../lib/loopfs.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_require
loopfs_setup thintrim-dbus-config
dbus_setup

# No filesystem is managed: these checks need none.
cat >"$TT_CONFIG" <<EOF
[Filesystems]
Include=$LOOPFS_RUN/none/*
EOF

# --- an invalid configuration at start ------------------------------------------------
printf '[Schedule]\n# a comment\nInterval=banana\n' >>"$TT_CONFIG"
out=$(timeout 10 "$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" 2>&1)
rc=$?
assert_eq "an invalid configuration: thintrimd refuses to start (exit 78, EX_CONFIG)" 78 "$rc"
assert_match "and names the file and line" "$TT_CONFIG:5:" "$out"
assert_match "and the key and what is wrong" 'Interval="banana": invalid value' "$out"
assert_true "and never took the bus name" sh -c "! busctl status $TT_NAME >/dev/null 2>&1"
out=$(timeout 10 "$THINTRIMD" --config "$LOOPFS_RUN/missing.conf" --state-dir "$TT_STATE" 2>&1)
assert_eq "a --config file that does not exist: refuses to start (78)" 78 "$?"
assert_match "and says which" "missing.conf" "$out"
out=$(timeout 10 "$THINTRIMD" --log-level loud 2>&1)
assert_eq "a bad option value: usage error (2)" 2 "$?"
assert_match "and says why" "--log-level" "$out"

# --- Reload ----------------------------------------------------------------------------
sed -i 's/^Interval=banana$/Interval=2d/' "$TT_CONFIG"
daemon_start
assert_eq "Interval from the configuration" "172800000000" "$(mprop Interval)"
mkdir -p "$TT_CONFIG.d"
printf '[Trim]\nRateLimit=fast\n' >"$TT_CONFIG.d/50-broken.conf"
assert_eq "Reload with a broken drop-in: InvalidConfig" "org.thintrim.ThinTrim1.Error.InvalidConfig" \
	"$(bus_error call Reload)"
out=$(call Reload 2>&1)
assert_match "the error names the drop-in and its line" "50-broken.conf:2:" "$out"
assert_eq "the old configuration stays (Interval)" "172800000000" "$(mprop Interval)"
assert_eq "the old configuration stays (RateLimit)" "0" "$(mprop RateLimit)"
out=$("$THINTRIM" reload 2>&1)
assert_eq "thintrim reload fails with 1" 1 "$?"
assert_match "thintrim reload says why, with file and line" "50-broken.conf:2:" "$out"
assert_no_match "and shows no D-Bus name" "org\.thintrim" "$out"
out=$(as_nobody "$THINTRIM" reload 2>&1)
assert_match "thintrim reload as nobody: denied, in words" "needs root or the polkit" "$out"
printf '[Trim]\nRateLimit=64M\n[Schedule]\nInterval=3d\n' >"$TT_CONFIG.d/50-broken.conf"
assert_true "Reload of a fixed drop-in succeeds" quiet call Reload
assert_eq "the drop-in's Interval is in force" "259200000000" "$(mprop Interval)"
assert_eq "and its RateLimit" "$((64 * 1048576))" "$(mprop RateLimit)"
printf '[Schedule]\nInterval=4d\n' >"$TT_CONFIG.d/60-later.conf"
kill -HUP "$DAEMON_PID"
assert_true "SIGHUP reloads too; later drop-ins win" \
	wait_until 5 mprop_is Interval 345600000000
printf '[Schedule]\nInterval=\xff\n' >"$TT_CONFIG.d/60-later.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
assert_true "SIGHUP with a broken file keeps the daemon running" name_owned
assert_eq "and the old configuration" "345600000000" "$(mprop Interval)"
daemon_stop
assert_eq "exit 0" 0 "$?"
rm -f "$TT_CONFIG.d/60-later.conf"

# --- a corrupt state file ------------------------------------------------------------
printf '{"version": 1, "filesystems": [' >"$TT_STATE/state.json"
daemon_start
assert_eq "with a corrupt state file the daemon runs" "idle" "$(mprop State)"
assert_eq "with an empty history" "never" "$(mprop LastRunResult)"
aside=("$TT_STATE"/state.json.corrupt-*)
assert_true "the corrupt file was moved aside" test -e "${aside[0]}"
assert_match "and the log says so" "state.*not valid JSON.*empty history" "$(daemon_log)"
daemon_stop
assert_eq "exit 0" 0 "$?"
assert_true "a new state file was written" test -s "$TT_STATE/state.json"

loopfs_verify_cleanup
loopfs_finish
