#!/bin/bash
# thintrimd while 500 bind mounts are made and removed (about 5 s each way,
# about 100 mount events a second): it keeps answering
# busctl, a filesystem mounted meanwhile gets its object and loses it when
# unmounted, and a Trim of a real loop filesystem among the bind mounts works.
# In a private mount namespace (unshare): the mounts stay out of the host's
# table and go with the test.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
if [[ -z ${TT_PRIVATE_NS:-} ]]; then
	[[ $(id -u) -eq 0 ]] || { echo "1..0 # SKIP needs root"; exit 77; }
	command -v unshare >/dev/null || { echo "1..0 # SKIP needs unshare"; exit 77; }
	exec unshare --mount --propagation private env TT_PRIVATE_NS=1 "$0" "$@"
fi
# shellcheck source=../lib/loopfs.sh
source "$here/../lib/loopfs.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_require
loopfs_require_mkfs ext4
loopfs_require_cmd python3
loopfs_setup thintrim-dbus-churn
dbus_setup
MOUNTS_PY=$here/../bench/mounts.py
COUNT=500

loopfs_new_fs ext4 data 512M
mnt=$LOOPFS_MNT
loopfs_image other 256M >/dev/null
loopfs_attach "$LOOPFS_IMG" >/dev/null
other_dev=$LOOPFS_DEV
loopfs_mkfs ext4 "$other_dev" tt-other
other=$LOOPFS_RUN/mnt/other
mkdir -p "$other"
binds=$LOOPFS_RUN/binds
mkdir -p "$binds"
mount -t tmpfs -o size=16m churn-binds "$binds"
trap 'umount -l "$binds" 2>/dev/null; dbus_cleanup; loopfs_cleanup' EXIT

cat >"$TT_CONFIG" <<CONF
[Schedule]
FreedSpaceThreshold=0
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
CONF
daemon_start
path=$(fs_path "$mnt")
loopfs_write_mib "$mnt/blob" 100
loopfs_delete "$mnt/blob"

# slowest_answer CMD...: runs CMD (a busctl call) until the churn ends; prints
# the longest it took, in ms. Fails if one call failed.
slowest_answer() {
	local worst=0 t0 t1
	while [[ -e $LOOPFS_RUN/.churning ]]; do
		t0=$(date +%s%N)
		"$@" >/dev/null || return 1
		t1=$(date +%s%N)
		(((t1 - t0) / 1000000 > worst)) && worst=$(((t1 - t0) / 1000000))
		sleep 0.05
	done
	echo "$worst"
}

# during PHASE CMD...: runs the mount command CMD in the background and,
# while it runs, checks what a user sees.
during() {
	local phase=$1 churn job worst
	shift
	: >"$LOOPFS_RUN/.churning"
	{ "$@"; rm -f "$LOOPFS_RUN/.churning"; } &
	churn=$!
	slowest_answer busctl get-property "$TT_NAME" "$path" "$TT_FS" MountPoint >"$LOOPFS_RUN/.worst" &
	local answers=$!

	mount "$other_dev" "$other"
	assert_true "$phase: a filesystem mounted meanwhile gets its object" \
		wait_until 5 fs_path "$other"
	job=$(trim_job "$mnt")
	assert_match "$phase: Trim of the loop filesystem returns a job" '^[0-9]+$' "$job"
	assert_true "$phase: the trim finishes" wait_until 60 sh -c \
		"busctl get-property $TT_NAME $path $TT_FS TrimCount | grep -qv ' $trims\$'"
	assert_eq "$phase: LastTrimResult" success "$(prop "$path" "$TT_FS" LastTrimResult)"
	umount "$other"
	assert_true "$phase: its object goes when it is unmounted" \
		wait_until 5 sh -c "! busctl call $TT_NAME $TT_PATH $TT_MANAGER GetFilesystem s $other"

	wait "$churn"
	assert_eq "$phase: the mount commands succeeded" 0 "$?"
	wait "$answers"
	assert_eq "$phase: busctl got an answer every time" 0 "$?"
	worst=$(<"$LOOPFS_RUN/.worst")
	assert_cmp "$phase: the slowest answer (${worst} ms) within 2 s" "${worst:-99999}" -le 2000
	trims=$(prop "$path" "$TT_FS" TrimCount)
}

trims=$(prop "$path" "$TT_FS" TrimCount)
during "making $COUNT bind mounts" python3 "$MOUNTS_PY" binds "$binds" 0 "$COUNT" "$mnt" 0.01
assert_eq "$COUNT bind mounts are in the table" "$COUNT" "$(grep -c " $binds/b" /proc/self/mountinfo)"
assert_eq "bind mounts of a managed filesystem make no objects of their own" 1 \
	"$(busctl tree --list "$TT_NAME" | grep -c "$TT_PATH/filesystem/")"
during "removing them" python3 "$MOUNTS_PY" unbind "$binds" 0 "$COUNT" 0.01
assert_eq "none left" 0 "$(grep -c " $binds/b" /proc/self/mountinfo)"
assert_eq "the filesystem's object stayed" "$mnt" "$(prop "$path" "$TT_FS" MountPoint)"
assert_true "thintrimd is still running" kill -0 "$DAEMON_PID"
assert_no_match "no warning in the daemon's log" "cannot read|[Ww]arning" "$(daemon_log)"
daemon_stop
assert_eq "thintrimd stops cleanly" 0 "$?"
loopfs_finish
