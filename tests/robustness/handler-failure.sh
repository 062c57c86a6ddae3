#!/bin/bash
# One boundary around every event-loop handler (issue 10, item 2): a fault
# outside any method call (here the system bus goes away) is logged with what thintrimd was doing, the
# state is saved, and the daemon exits 1 with that message, not "cannot
# start" and not by unwinding out of its loop.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

loopfs_require_cmd python3
dbus_test_setup thintrim-robust-handler ext4
dbus_data_fs
daemon_start --mountinfo "$TT_MOUNTINFO"
monitor_start
job=$(trim_job "$LOOPFS_MNT") || loopfs_die "Trim failed"
assert_true "a trim finishes" wait_job "$job"
assert_true "Suspend (saved in the state)" quiet call Suspend

# The system bus goes away under the daemon: its loop fails outside any
# method call.
kill "$DBUS_PID"
DBUS_PID=
pid=$DAEMON_PID
rc=124
if timeout 10 tail --pid="$pid" -f /dev/null; then
	wait "$pid"
	rc=$?
else
	kill -KILL "$pid"
fi
DAEMON_PID=
assert_eq "thintrimd exits 1" 1 "$rc"
log=$(<"$TT_LOG")
assert_match "the log says what it was doing" "internal error while (dispatching|waiting for) D-Bus messages" "$log"
assert_match "and that it saved the state and stopped" "saving the state and stopping" "$log"
assert_no_match "and does not claim it could not start" "cannot start" "$log"
assert_true "the state kept the trim and the suspension" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["suspended"], s
assert any(f.get("last_trim_result") == "success" for f in s["filesystems"].values()), s' "$TT_STATE/state.json"

loopfs_finish
