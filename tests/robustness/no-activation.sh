#!/bin/bash
# Read commands never start a stopped daemon (issue 10, item 8): with
# thintrimd activatable on the bus but not running, `thintrim status`,
# `list`, `list --json` and `doctor` run by an unprivileged user read the
# system directly, say so on stderr, and thintrimd is not started (the
# activation would run its schedule). Once it runs, they use it.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

dbus_test_setup thintrim-robust-activation ext4
dbus_data_fs

# A second private bus on which thintrimd is activatable: the service file
# runs a script that records each activation (and its process, for the
# cleanup), then the real daemon.
services=$TT_DIR/services
marker=$TT_DIR/activated
mkdir -p "$services"
cat >"$TT_DIR/activate.sh" <<SCRIPT
#!/bin/sh
echo activated >>"$marker"
cut -d' ' -f1,22 /proc/\$\$/stat >>"$LOOPFS_RUN/.state/pids"
exec "$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" --mountinfo "$TT_MOUNTINFO"
SCRIPT
chmod 755 "$TT_DIR/activate.sh"
printf '[D-BUS Service]\nName=%s\nExec=%s\nUser=root\n' "$TT_NAME" "$TT_DIR/activate.sh" \
	>"$services/$TT_NAME.service"
sed -e "s|<type>system</type>|<type>system</type><servicedir>$services</servicedir>|" \
	"$TT_DIR/bus.conf" >"$TT_DIR/bus-activation.conf"
bus_start "$TT_DIR/bus-activation.conf"
activatable=$(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ListActivatableNames)
[[ $activatable == *"$TT_NAME"* ]] || loopfs_skip "this dbus-daemon does not activate from <servicedir>"

for cmd in status list "list --json" doctor; do
	# shellcheck disable=SC2086 # $cmd is a command and its options
	out=$(as_nobody "$THINTRIM" --mountinfo "$TT_MOUNTINFO" $cmd 2>"$TT_DIR/stderr")
	rc=$?
	assert_cmp "thintrim $cmd without the daemon: exit 0 or 1 (doctor's findings)" "$rc" -le 1
	assert_match "thintrim $cmd says it reads the system directly" "reading the system directly" \
		"$(<"$TT_DIR/stderr")"
	assert_match "thintrim $cmd shows the filesystem" "$LOOPFS_MNT|findings|discard" "$out"
done
sleep 0.5
assert_true "no read command started thintrimd" test ! -e "$marker"
assert_true "the name has no owner" sh -c "! busctl status $TT_NAME >/dev/null 2>&1"

daemon_start --mountinfo "$TT_MOUNTINFO"
out=$(as_nobody "$THINTRIM" --mountinfo "$TT_MOUNTINFO" list --json 2>"$TT_DIR/stderr")
assert_match "with the daemon running, list --json reads it" '"source": "daemon"' "$out"
assert_no_match "and says nothing about reading locally" "directly" "$(<"$TT_DIR/stderr")"
daemon_stop
assert_eq "and it stops cleanly" 0 "$?"

loopfs_finish
