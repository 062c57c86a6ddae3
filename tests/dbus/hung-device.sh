#!/bin/bash
# thintrimd with a device that stops answering: reading one filesystem's
# block stack blocks for good (its discard_max_bytes in an injected sysfs
# tree becomes a FIFO no one writes, so open() never returns, as a read of a
# hung device would). The daemon keeps answering the bus, Diagnose fails
# cleanly with Failed instead of hanging, a Trim of the other filesystem is
# queued and runs, and SIGTERM stops the daemon within seconds.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_test_setup thintrim-dbus-hung ext4
loopfs_require_cmd mkfifo

loopfs_new_fs ext4 good 256M
good=$LOOPFS_MNT good_dev=$LOOPFS_DEV
loopfs_new_fs ext4 hung 256M
hung=$LOOPFS_MNT hung_dev=$LOOPFS_DEV
TT_MOUNTINFO=$TT_DIR/mountinfo
loopfs_mountinfo "$TT_MOUNTINFO"
printf '[Schedule]\nBootDelay=1w\nFreedSpaceThreshold=0\n' >"$TT_CONFIG"

# sysfs_copy ROOT DEV...: a sysfs tree under ROOT/sys holding what thintrimd
# reads of each loop device, copied from the real one.
sysfs_copy() {
	local root=$1 dev name dir file
	shift
	mkdir -p "$root/sys/dev/block" "$root/sys/class/block" "$root/sys/block"
	for dev in "$@"; do
		name=${dev#/dev/}
		dir=$root/sys/devices/virtual/block/$name
		mkdir -p "$dir/queue" "$dir/loop"
		for file in dev size removable stat diskseq queue/discard_max_bytes \
			queue/discard_max_hw_bytes queue/discard_granularity loop/backing_file; do
			[[ -r /sys/class/block/$name/$file ]] && cat "/sys/class/block/$name/$file" >"$dir/$file"
		done
		ln -s "../../devices/virtual/block/$name" "$root/sys/dev/block/$(<"$dir/dev")"
		ln -s "../../devices/virtual/block/$name" "$root/sys/class/block/$name"
		ln -s "../devices/virtual/block/$name" "$root/sys/block/$name"
	done
}
sysroot=$TT_DIR/sysroot
sysfs_copy "$sysroot" "$good_dev" "$hung_dev"

daemon_start --sysfs-root "$sysroot" --mountinfo "$TT_MOUNTINFO"
monitor_start
good_path=$(fs_path "$good")
hung_path=$(fs_path "$hung")
assert_eq "the good filesystem is eligible" "true" "$(prop "$good_path" "$TT_FS" Eligible)"
assert_eq "so is the other, before its device hangs" "true" "$(prop "$hung_path" "$TT_FS" Eligible)"

# The device hangs: whoever reads its stack now waits for good.
hung_file=$sysroot/sys/devices/virtual/block/${hung_dev#/dev/}/queue/discard_max_bytes
rm -f "$hung_file"
mkfifo "$hung_file"

# Diagnose walks every stack afresh; it fails after its wait, it does not
# hang (nor take the daemon with it).
t0=$SECONDS
err=$(bus_error busctl --timeout=20 call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Diagnose)
assert_eq "Diagnose fails with Failed while a stack cannot be read" \
	"org.thintrim.ThinTrim1.Error.Failed" "$err"
assert_cmp "Diagnose answered within 15 s" $((SECONDS - t0)) -le 15

assert_true "GetAll still answers" quiet busctl --timeout=5 call "$TT_NAME" "$TT_PATH" \
	org.freedesktop.DBus.Properties GetAll s "$TT_MANAGER"
objects=$(busctl --timeout=5 call "$TT_NAME" "$TT_PATH" org.freedesktop.DBus.ObjectManager \
	GetManagedObjects)
assert_match "GetManagedObjects lists the good filesystem" "$good_path" "$objects"
assert_match "and the one whose device hangs" "$hung_path" "$objects"

# Trim waits for fresh verdicts at most 5 s, then goes on with those at hand.
reply=$(busctl --timeout=20 call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' 1 "$good" 0)
job=${reply#t }
assert_match "Trim of the good filesystem returns a job id" '^[1-9][0-9]*$' "$job"
assert_true "its job finishes" wait_job "$job"
assert_eq "with success" "success" "$(job_result "$job")"
assert_true "a property read still answers" quiet prop "$TT_PATH" "$TT_MANAGER" State

t0=$SECONDS
daemon_stop 10
rc=$?
assert_eq "SIGTERM stops thintrimd cleanly" 0 "$rc"
assert_cmp "within 5 s" $((SECONDS - t0)) -le 5

loopfs_finish
