#!/bin/bash
# History mixed with a snapshot's (issue 10, item 9): an LVM snapshot, or a
# copied disk image, carries its origin's filesystem UUID. Mounted together,
# the two are different filesystems and keep separate histories (keyed
# UUID@source while the UUID is shared); the origin keeps the history it had
# before the snapshot appeared, and gets it back under the bare UUID when the
# snapshot goes. Two loop devices of one copied ext4 image stand in for the
# origin and its snapshot.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

loopfs_require_cmd python3 blkid
dbus_test_setup thintrim-robust-snapshot ext4

loopfs_image origin 128M >/dev/null
loopfs_attach "$LOOPFS_IMG" >/dev/null
loopfs_mkfs ext4 "$LOOPFS_DEV" tt-origin
origin_dev=$LOOPFS_DEV
cp --sparse=always -- "$LOOPFS_IMG" "$LOOPFS_RUN/snap.img"
snap_dev=$(loopfs_attach "$LOOPFS_RUN/snap.img")
uuid=$(blkid -s UUID -o value "$origin_dev")
assert_eq "the copy has the origin's UUID, as a snapshot does" "$uuid" "$(blkid -s UUID -o value "$snap_dev")"
origin=$(loopfs_mount "$origin_dev" origin nodiscard,noinit_itable ext4)

cat >"$TT_CONFIG" <<CONF
[Schedule]
BootDelay=1w
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
CONF
daemon_start
state=$TT_STATE/state.json
keys() { python3 -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1]))["filesystems"])))' "$state"; }
fsprop() { prop "$(fs_path "$1")" "$TT_FS" "$2"; }
trim_and_wait() {
	trim_job "$1" >/dev/null || return 1
	wait_until 30 sh -c "busctl get-property $TT_NAME $(fs_path "$1") $TT_FS LastTrimStarted | grep -qv ' 0$'" &&
		wait_until 30 sh -c "[ \"\$(busctl get-property $TT_NAME $TT_PATH $TT_MANAGER State)\" = 's \"idle\"' ]"
}

assert_true "the origin, alone, is trimmed" trim_and_wait "$origin"
assert_eq "origin: TrimCount 1" 1 "$(fsprop "$origin" TrimCount)"

snap=$(loopfs_mount "$snap_dev" snap nodiscard,noinit_itable ext4)
assert_true "the snapshot is managed" wait_until 10 quiet fs_path "$snap"
assert_eq "the snapshot has no history of its own yet" never "$(fsprop "$snap" LastTrimResult)"
assert_eq "the snapshot's TrimCount is 0, not the origin's" 0 "$(fsprop "$snap" TrimCount)"
assert_eq "the origin keeps its history" 1 "$(fsprop "$origin" TrimCount)"
assert_true "the snapshot is trimmed" trim_and_wait "$snap"
assert_eq "snapshot: TrimCount 1" 1 "$(fsprop "$snap" TrimCount)"
assert_eq "origin: still TrimCount 1" 1 "$(fsprop "$origin" TrimCount)"
assert_true "the daemon saves on stop" daemon_stop
assert_eq "state.json: one history per device while the UUID is shared" \
	"$uuid@$origin_dev $uuid@$snap_dev" "$(keys)"

daemon_start
assert_eq "after a restart: origin TrimCount 1" 1 "$(fsprop "$origin" TrimCount)"
assert_eq "after a restart: snapshot TrimCount 1" 1 "$(fsprop "$snap" TrimCount)"
umount "$snap" || loopfs_die "umount $snap"
assert_true "the snapshot's object goes" wait_until 10 sh -c "! busctl call $TT_NAME $TT_PATH $TT_MANAGER GetFilesystem s '$snap' >/dev/null 2>&1"
assert_eq "the origin, alone again, keeps its history" 1 "$(fsprop "$origin" TrimCount)"
assert_true "the daemon saves on stop" daemon_stop
assert_eq "under the bare UUID again; the snapshot's until ForgetAfter" \
	"$uuid $uuid@$snap_dev" "$(keys)"
loopfs_finish
