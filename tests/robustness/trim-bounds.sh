#!/bin/bash
# Unbounded Trim arguments (issue 10, item 9): a call naming 100,000 mount
# points, or one path of 5000 bytes, is refused with InvalidArgument at once,
# before any authorization (an unprivileged caller cannot make the daemon hold
# it while polkit decides), with a message naming the bound; unknown options
# too. The daemon stays up and answers; within the bounds, the authorization
# decides as before.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

dbus_test_setup thintrim-robust-bounds ext4
loopfs_new_fs ext4 a 128M
mnt=$LOOPFS_MNT
cat >"$TT_CONFIG" <<CONF
[Schedule]
BootDelay=1w
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
CONF
daemon_start
fs_path "$mnt" >/dev/null || loopfs_die "thintrimd does not manage $mnt"

err=org.thintrim.ThinTrim1.Error
trim_as() { # WHO COUNT PATHS... : busctl Manager.Trim as root or nobody
	local who=$1
	shift
	if [[ $who == nobody ]]; then
		as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' "$@"
	else
		busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' "$@"
	fi
}

mapfile -t many < <(yes / | head -n 100000)
for who in nobody root; do
	assert_eq "$who: 100,000 mount points are InvalidArgument" "$err.InvalidArgument" \
		"$(bus_error trim_as "$who" 100000 "${many[@]}" 0)"
done
msg=$(as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' 100000 "${many[@]}" 0 2>&1)
assert_match "the message names the count and the bound" \
	"Trim names 100000 mount points; at most 1024 may be named in one call" "$msg"
assert_match "and the way to trim everything" "an empty list trims every eligible filesystem" "$msg"

long=/$(head -c 5000 /dev/zero | tr '\0' a)
assert_eq "nobody: a 5001-byte path is InvalidArgument" "$err.InvalidArgument" \
	"$(bus_error trim_as nobody 1 "$long" 0)"
msg=$(trim_as nobody 1 "$long" 0 2>&1)
assert_match "the message names the path's length and the limit" \
	"mount point 1 of Trim is 5001 bytes long; a path has at most 4096 bytes" "$msg"
assert_eq "nobody: an unknown option is InvalidArgument before the authorization" \
	"$err.InvalidArgument" "$(bus_error trim_as nobody 1 "$mnt" 1 everything b true)"
assert_eq "nobody: Filesystem.Trim with an unknown option too" "$err.InvalidArgument" \
	"$(bus_error as_nobody busctl call "$TT_NAME" "$(fs_path "$mnt")" "$TT_FS" Trim 'a{sv}' 1 everything b true)"

mapfile -t bound < <(yes "$mnt" | head -n 1024)
assert_eq "nobody: 1024 mount points reach the authorization (AccessDenied)" \
	org.freedesktop.DBus.Error.AccessDenied "$(bus_error trim_as nobody 1024 "${bound[@]}" 0)"
assert_true "thintrimd is still running" kill -0 "$DAEMON_PID"
assert_eq "and answers, idle" idle "$(mprop State)"
assert_eq "nothing was queued" 0 "$(mprop QueuedJobs)"
job=$(trim_job "$mnt")
assert_match "root's ordinary Trim still works" '^[0-9]+$' "$job"
assert_true "and finishes" wait_until 30 sh -c "busctl get-property $TT_NAME $(fs_path "$mnt") $TT_FS LastTrimResult | grep -q success"
loopfs_finish
