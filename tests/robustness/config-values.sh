#!/bin/bash
# Hostile or absurd configuration values (issue 10, item 6): each is refused
# at start (exit 78) and by Reload (the old configuration stays, the daemon
# answers), with the file, the line, the key and what is wrong.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

dbus_test_setup thintrim-robust-config

base="[Filesystems]
Include=$LOOPFS_RUN/none/*"

# refused LABEL TEXT EXPECTED...: thintrimd refuses to start on TEXT with
# exit 78 and a message matching each EXPECTED.
refused() {
	local label=$1 text=$2 out rc
	shift 2
	printf '%s\n%s' "$base" "$text" >"$TT_CONFIG"
	out=$(timeout 10 "$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" 2>&1)
	rc=$?
	assert_eq "$label: refused at start (78)" 78 "$rc"
	local expected
	for expected in "$@"; do
		assert_match "$label: says \"$expected\"" "$expected" "$out"
	done
}

refused "Interval=15249w (overflows when added to a time)" $'[Schedule]\nInterval=15249w' \
	"$TT_CONFIG:4:" 'Interval="15249w"' "out of range"
refused "Interval=9223372036854775808us" $'[Schedule]\nInterval=9223372036854775808us' \
	"$TT_CONFIG:4:" 'Interval="9223372036854775808us"' "too long"
refused "CheckInterval=1us (the loop would spin)" $'[Schedule]\nCheckInterval=1us' \
	"$TT_CONFIG:4:" 'CheckInterval="1us"' "out of range; CheckInterval takes 1s to 1d"
refused "a negative size" $'[Trim]\nChunkSize=-1G' "$TT_CONFIG:4:" 'ChunkSize="-1G"' "negative"
refused "a size of 16E" $'[Trim]\nRateLimit=16E' "$TT_CONFIG:4:" 'RateLimit="16E"' "too large"
refused "a size of 2E" $'[Trim]\nMinimumExtent=2E' "$TT_CONFIG:4:" "out of range"
printf '%s\n[Trim]\nChunkSize=1G\0junk\n' "$base" >"$TT_CONFIG"
out=$(timeout 10 "$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" 2>&1)
assert_eq "a NUL byte: refused at start (78)" 78 "$?"
assert_match "a NUL byte: names file and line" "$TT_CONFIG:4: contains a NUL byte" "$out"

{
	echo "$base"
	printf '[Filesystems]\nExclude=/'
	head -c 1000000 /dev/zero | tr '\0' 'a'
	echo
} >"$TT_CONFIG"
out=$(timeout 10 "$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" 2>&1)
assert_eq "a line of a million bytes: refused at start (78)" 78 "$?"
assert_match "a line of a million bytes: names file and line" "$TT_CONFIG:4: line longer than" "$out"
assert_cmp "a line of a million bytes: the message does not quote it" "${#out}" -lt 1000

{
	echo "$base"
	yes "# padding comment line" | head -c $((10 * 1024 * 1024))
} >"$TT_CONFIG"
out=$(timeout 10 "$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" 2>&1)
assert_eq "a 10 MiB file: refused at start (78)" 78 "$?"
assert_match "a 10 MiB file: says it is too large" "$TT_CONFIG: larger than 1.0 MiB" "$out"

# --- Reload keeps the running configuration -------------------------------------------
printf '%s\n[Schedule]\nInterval=2d\nCheckInterval=5min\n' "$base" >"$TT_CONFIG"
daemon_start
for value in 1us 0 9223372036854775808us; do
	printf '%s\n[Schedule]\nInterval=2d\nCheckInterval=%s\n' "$base" "$value" >"$TT_CONFIG"
	assert_eq "Reload with CheckInterval=$value: InvalidConfig" \
		"org.thintrim.ThinTrim1.Error.InvalidConfig" "$(bus_error call Reload)"
done
out=$(call Reload 2>&1)
assert_match "the Reload error names file, line and key" "$TT_CONFIG:5: \\[Schedule\\] CheckInterval=" "$out"
assert_eq "the daemon still answers with the old Interval" "172800000000" "$(mprop Interval)"
cpu_before=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
sleep 2
cpu_after=$(awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat")
assert_cmp "the daemon does not spin (CPU ticks in 2 s)" "$((cpu_after - cpu_before))" -lt 20
daemon_stop
assert_eq "and stops cleanly" 0 "$?"

loopfs_finish
