#!/bin/bash
# Bytes that are not UTF-8 (issue 10, item 1): an ext4 filesystem labelled
# $'\xff\xfeab' (tune2fs) and mounted on a directory named $'caf\xe9' while
# thintrimd runs. It stays up (sd-bus refused the strings and the daemon
# exited), publishes the filesystem with each invalid byte as U+FFFD, trims
# it and keeps its history; thintrim list --json is valid JSON through the
# daemon and when reading locally.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

loopfs_require_cmd python3 tune2fs
dbus_test_setup thintrim-robust-utf8 ext4

dbus_data_fs
daemon_start --mountinfo "$TT_MOUNTINFO"

# The odd filesystem arrives while the daemon runs.
loopfs_image odd 256M >/dev/null
loopfs_attach "$LOOPFS_IMG" >/dev/null
loopfs_mkfs ext4 "$LOOPFS_DEV"
tune2fs -L $'\xff\xfeab' "$LOOPFS_DEV" >/dev/null || loopfs_die "tune2fs -L failed"
loopfs_mount "$LOOPFS_DEV" $'caf\xe9' "$(loopfs_default_opts ext4)" ext4 >/dev/null
odd=$LOOPFS_MNT
loopfs_mountinfo "$TT_MOUNTINFO.new"
mv "$TT_MOUNTINFO.new" "$TT_MOUNTINFO"

# list_json: thintrim list --json; fails unless it is valid JSON.
list_json() {
	local out
	out=$("$THINTRIM" --mountinfo "$TT_MOUNTINFO" list --json 2>/dev/null) || return 1
	python3 -c 'import json, sys; json.loads(sys.stdin.buffer.read().decode("utf-8"))' <<<"$out" || return 1
	printf '%s\n' "$out"
}
# field JSON MOUNT-SUFFIX KEY: KEY of the filesystem whose mount point ends in MOUNT-SUFFIX.
field() {
	python3 -c '
import json, sys
for fs in json.loads(sys.argv[1])["filesystems"]:
    if fs["mount_point"].endswith(sys.argv[2]):
        print(fs[sys.argv[3]])' "$1" "$2" "$3"
}
two_listed() { [[ $(list_json | grep -c '"mount_point"') == 2 ]]; }

assert_true "the daemon publishes the new filesystem" wait_until 10 two_listed
assert_true "thintrimd is still running" kill -0 "$DAEMON_PID"
assert_eq "and still answers" "idle" "$(mprop State)"
out=$(list_json)
assert_eq "its label: each invalid byte is U+FFFD" $'\uFFFD\uFFFDab' "$(field "$out" $'caf\uFFFD' label)"
assert_eq "its mount point: caf + U+FFFD" "$LOOPFS_RUN/mnt/caf"$'\uFFFD' "$(field "$out" $'caf\uFFFD' mount_point)"
assert_true "the log has no emit failure" sh -c "! grep -q 'Failed to emit' '$TT_LOG'"

monitor_start
job=$(call Trim 'asa{sv}' 0 0) || loopfs_die "Trim failed"
job=${job#t }
assert_true "a trim of both finishes" wait_job "$job"
assert_eq "the job succeeded" "success" "$(job_result "$job")"
assert_true "FilesystemTrimmed names the odd mount point with U+FFFD" \
	grep -q "\"member\":\"FilesystemTrimmed\".*caf"$'\uFFFD' "$TT_MONITOR"
out=$(list_json)
assert_eq "the odd filesystem's trim is in its history" "success" "$(field "$out" $'caf\uFFFD' last_trim_result)"
assert_true "thintrimd is still running after the trim" kill -0 "$DAEMON_PID"

daemon_stop
assert_eq "and stops cleanly" 0 "$?"
assert_true "state.json records both filesystems" \
	python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); assert len(s["filesystems"]) == 2, s' "$TT_STATE/state.json"

out=$(list_json) || out=
assert_match "without the daemon, list --json is valid JSON" '"mount_point"' "$out"
assert_eq "and escapes the label the same way" $'\uFFFD\uFFFDab' "$(field "$out" $'caf\uFFFD' label)"
assert_true "the odd directory is still there with its bytes" test -d "$odd"

loopfs_finish
