#!/bin/bash
# The D-Bus API of the real thintrimd on a private system bus: what it
# publishes matches the XML, objects come and go with mounts (here from a
# --mountinfo file, watched with inotify), errors carry their names, reading
# is open to everyone and every mutating method refuses an unprivileged
# caller.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../lib/loopfs.sh
source "$here/../lib/loopfs.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_require
loopfs_require_mkfs ext4
loopfs_require_cmd python3
loopfs_setup thintrim-dbus-api
dbus_setup

loopfs_new_fs ext4 good 256M
good=$LOOPFS_MNT
loopfs_new_fs ext4 nodiscard 256M
nodiscard=$LOOPFS_MNT
loopfs_zero_discard "$LOOPFS_DEV"
mountinfo=$TT_DIR/mountinfo
loopfs_mountinfo "$mountinfo"

# No schedule during this test: Interval is long and the never-trimmed
# filesystems wait for the machine's boot + 1 week.
cat >"$TT_CONFIG" <<EOF
[Schedule]
BootDelay=1w
FreedSpaceThreshold=0
EOF
notify_listen "$TT_DIR/notify.sock" "$TT_DIR/notify.log" "$TT_NAME"
NOTIFY_SOCKET=$TT_DIR/notify.sock WATCHDOG_USEC=400000 daemon_start --mountinfo "$mountinfo"
monitor_start

# --- systemd ------------------------------------------------------------------------
notes=$TT_DIR/notify.log
assert_true "READY=1 is sent" wait_until 10 grep -qx "READY=1" "$notes"
assert_eq "READY=1 once the name is owned (NameHasOwner while the daemon is stopped at READY=1)" \
	"b true" "$(sed -n 's/^NAME_OWNED_AT_READY=//p' "$notes")"
assert_match "STATUS= tells the next trim" "STATUS=Idle; next trim in " "$(cat "$notes")"
assert_true "WATCHDOG=1 at half of WATCHDOG_USEC" wait_until 3 grep -qx "WATCHDOG=1" "$notes"

# --- what is published ---------------------------------------------------------
good_path=$(fs_path "$good")
assert_eq "GetFilesystem: the object path is the sd_bus_path_encode()d mount point" \
	"/org/thintrim/ThinTrim1/filesystem/$(printf '%s' "$good" | sed 's|/|_2f|g; s|-|_2d|g; s|\.|_2e|g')" "$good_path"
tree=$(busctl tree --list "$TT_NAME")
assert_match "busctl tree lists the filesystem objects" "$good_path" "$tree"
nodiscard_path=$(fs_path "$nodiscard")
assert_match "an ineligible managed filesystem has an object too" "$nodiscard_path" "$tree"

problems=$(python3 "$here/check-introspection.py" "$TT_API_XML" "$TT_NAME" \
	"$TT_PATH=$TT_MANAGER" "$good_path=$TT_FS" 2>&1)
assert_eq "the published interfaces are exactly the XML's, and every member is documented" "" "$problems"

assert_eq "Version is the daemon's" "$("$THINTRIMD" --version)" "$(mprop Version)"
assert_eq "State is idle" "idle" "$(mprop State)"
assert_eq "LastRunResult before any run" "never" "$(mprop LastRunResult)"
assert_eq "Interval is the configuration's default (1w)" "604800000000" "$(mprop Interval)"
assert_eq "MountPoint" "$good" "$(prop "$good_path" "$TT_FS" MountPoint)"
assert_eq "FsType" "ext4" "$(prop "$good_path" "$TT_FS" FsType)"
assert_eq "Eligible" "true" "$(prop "$good_path" "$TT_FS" Eligible)"
assert_eq "LastTrimResult before the first trim" "never" "$(prop "$good_path" "$TT_FS" LastTrimResult)"
assert_match "Stack has the loop device" 'a\(ussttb\) 1 0 "loop[0-9]+" "loop"' \
	"$(busctl get-property "$TT_NAME" "$good_path" "$TT_FS" Stack)"
assert_eq "not eligible with discard_max_bytes 0" "false" "$(prop "$nodiscard_path" "$TT_FS" Eligible)"
assert_match "Reason names the loop device" "loop" "$(prop "$nodiscard_path" "$TT_FS" Reason)"
assert_match "GetManagedObjects carries every filesystem's properties" "\"$nodiscard\"" \
	"$(busctl call "$TT_NAME" "$TT_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects)"
findings=$(call Diagnose)
assert_match "Diagnose: ok for the good filesystem" "\"ok\" \"$good\"" "$findings"
assert_match "Diagnose: error for the one that drops discards" "\"error\" \"$nodiscard\"" "$findings"
doctor=$(as_nobody "$THINTRIM" doctor --json 2>&1)
assert_eq "thintrim doctor as a user: exit 1 when a filesystem drops discards" 1 \
	"$(as_nobody "$THINTRIM" doctor >/dev/null 2>&1; echo $?)"
assert_eq "thintrim doctor --json reads the daemon's findings" "daemon error" \
	"$(python3 -c 'import json,sys
d=json.load(sys.stdin)
print(d["source"], *[f["severity"] for f in d["findings"] if f["subject"]==sys.argv[1]])' "$nodiscard" <<<"$doctor")"

# --- errors ----------------------------------------------------------------------
err=org.thintrim.ThinTrim1.Error
assert_eq "Trim of a path that is no mount point: NotManaged" "$err.NotManaged" \
	"$(bus_error call Trim 'asa{sv}' 1 /nonexistent 0)"
assert_eq "Trim of a mount point that drops discards: NotEligible" "$err.NotEligible" \
	"$(bus_error call Trim 'asa{sv}' 1 "$nodiscard" 0)"
assert_eq "Trim with an unknown option: InvalidArgument" "$err.InvalidArgument" \
	"$(bus_error call Trim 'asa{sv}' 1 "$good" 1 speed t 5)"
assert_eq "Trim with an option of the wrong type: InvalidArgument" "$err.InvalidArgument" \
	"$(bus_error call Trim 'asa{sv}' 1 "$good" 1 dry_run s yes)"
assert_eq "Cancel of an unknown job: NoSuchJob" "$err.NoSuchJob" "$(bus_error call Cancel t 4242)"
assert_eq "Cancel 0 with nothing running: NoSuchJob" "$err.NoSuchJob" "$(bus_error call Cancel t 0)"
assert_eq "GetFilesystem of an unmanaged mount: NotManaged" "$err.NotManaged" \
	"$(bus_error call GetFilesystem s /proc)"
msg=$(call Trim 'asa{sv}' 1 /nonexistent 0 2>&1)
assert_match "errors carry a sentence" "/nonexistent is not a mount point" "$msg"
assert_eq "nothing was queued by the failed calls" "" "$(signal_data JobStarted)"

# --- authorization -----------------------------------------------------------------
denied=org.freedesktop.DBus.Error.AccessDenied
assert_eq "nobody: Manager.Trim is denied" "$denied" \
	"$(bus_error as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' 1 "$good" 0)"
assert_eq "nobody: Manager.Trim of everything is denied" "$denied" \
	"$(bus_error as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' 0 0)"
assert_eq "nobody: Filesystem.Trim is denied" "$denied" \
	"$(bus_error as_nobody busctl call "$TT_NAME" "$good_path" "$TT_FS" Trim 'a{sv}' 0)"
for method in Suspend Resume Reload; do
	assert_eq "nobody: $method is denied" "$denied" \
		"$(bus_error as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" "$method")"
done
assert_eq "nobody: Cancel is denied" "$denied" \
	"$(bus_error as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Cancel t 0)"
assert_eq "nobody: arguments are not looked at before the authorization" "$denied" \
	"$(bus_error as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Trim 'asa{sv}' 1 /nonexistent 0)"
assert_eq "nobody: nothing changed" "idle" "$(mprop State)"
assert_eq "nobody: no job was queued" "" "$(signal_data JobStarted)"
assert_eq "nobody can read a property" "ext4" "$(as_nobody busctl get-property "$TT_NAME" "$good_path" "$TT_FS" FsType | cut -d' ' -f2 | tr -d '"')"
assert_true "nobody can list the objects" quiet as_nobody busctl call "$TT_NAME" "$TT_PATH" org.freedesktop.DBus.ObjectManager GetManagedObjects
assert_true "nobody can resolve a filesystem" quiet as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" GetFilesystem s "$good"
assert_true "nobody can run Diagnose" quiet as_nobody busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Diagnose
assert_true "nobody can introspect" quiet as_nobody busctl introspect "$TT_NAME" "$TT_PATH"
assert_true "root can Suspend" quiet call Suspend
assert_eq "State after Suspend" "suspended" "$(mprop State)"
assert_true "root can Resume" quiet call Resume
assert_eq "State after Resume" "idle" "$(mprop State)"

# --- objects follow the mount table -----------------------------------------------
loopfs_new_fs ext4 late 256M
late=$LOOPFS_MNT
late_path=/org/thintrim/ThinTrim1/filesystem/$(printf '%s' "$late" | sed 's|/|_2f|g; s|-|_2d|g; s|\.|_2e|g')
loopfs_mountinfo "$mountinfo.new"
mv "$mountinfo.new" "$mountinfo"
assert_true "a new mount gets an object (file replaced by rename)" \
	wait_until 10 quiet busctl introspect "$TT_NAME" "$late_path" "$TT_FS"
assert_true "InterfacesAdded was sent for it" \
	wait_until 5 grep -q "\"member\":\"InterfacesAdded\",.*\"$late_path\"" "$TT_MONITOR"
umount "$late"
loopfs_mountinfo "$mountinfo"
assert_true "an unmounted filesystem loses its object (file rewritten in place)" \
	wait_until 10 sh -c "! busctl tree --list $TT_NAME | grep -qx '$late_path'"
assert_true "InterfacesRemoved was sent for it" \
	wait_until 5 grep -q "\"member\":\"InterfacesRemoved\",.*\"$late_path\"" "$TT_MONITOR"
assert_eq "the daemon is still there" "idle" "$(mprop State)"

daemon_stop
assert_eq "thintrimd exits 0 on SIGTERM" 0 "$?"
assert_true "STOPPING=1 on SIGTERM" grep -qx "STOPPING=1" "$notes"
loopfs_verify_cleanup
loopfs_finish
