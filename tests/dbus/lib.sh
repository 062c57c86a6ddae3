# shellcheck shell=bash
# shellcheck disable=SC2034 # the TT_* names are for the scripts that source this
# lib.sh - the real thintrimd on a private system bus, for tests/dbus/*.sh
# and tests/robustness/*.sh. It sources tests/lib/loopfs.sh (unless already
# sourced): the run directory, loop devices, checks (assert_*), and the
# cleanup this library hooks into. Everything a test starts is stopped, and
# everything it mounts or attaches is undone, however the test ends.
#
#   dbus_test_setup NAME [FSTYPE...] # the usual start: dbus_require, the mkfs
#                                   # of each FSTYPE, loopfs_setup NAME, dbus_setup
#   dbus_data_fs                    # one ext4 filesystem at $LOOPFS_MNT, $TT_MOUNTINFO
#                                   # listing only it, a config that never trims by itself
#   dbus_require                    # skip (77) unless root, dbus-daemon, busctl
#   dbus_setup                      # after loopfs_setup: private bus, state dir,
#                                   # config file; exports DBUS_SYSTEM_BUS_ADDRESS
#   bus_start CONF                  # (re)start the private bus with CONF
#   helper_started PID              # a helper process the cleanup stops
#   daemon_start [ARGS...]          # thintrimd --config $TT_CONFIG --state-dir $TT_STATE
#   daemon_stop                     # SIGTERM, wait; returns thintrimd's exit status
#   monitor_start                   # record the daemon's traffic (busctl monitor)
#   signal_data MEMBER              # payload of each recorded MEMBER signal, one per line
#   wait_until TIMEOUT CMD...       # poll CMD until it succeeds
#   job_result JOB                  # JobFinished result of JOB ("" until then)
#   prop PATH INTERFACE NAME        # a property's value, strings unquoted
#   mprop_is NAME VALUE             # a Manager property is VALUE (for wait_until)
#   call METHOD SIG ARGS...         # Manager method through busctl, prints the reply
#   bus_error CMD...                # the D-Bus error name CMD (a busctl call) failed with
#   as_nobody CMD...                # CMD as uid/gid 65534 without groups
#   quiet CMD...                    # CMD without its stdout
#   notify_listen SOCKET FILE [NAME] # record sd_notify() messages sent to SOCKET
#                                   # (and whether NAME had an owner at READY=1)
#
# Environment: THINTRIMD (the built daemon), THINTRIM (the built CLI),
# TT_POLICY (units/org.thintrim.ThinTrim1.conf), TT_BUS_CONF_IN (the bus
# configuration template next to this file).

if [[ $(type -t loopfs_setup) != function ]]; then
	# shellcheck source=../lib/loopfs.sh
	source "$(dirname -- "${BASH_SOURCE[0]}")/../lib/loopfs.sh"
fi

TT_NAME=org.thintrim.ThinTrim1
TT_PATH=/org/thintrim/ThinTrim1
TT_MANAGER=org.thintrim.ThinTrim1.Manager
TT_FS=org.thintrim.ThinTrim1.Filesystem

DBUS_PID=
DAEMON_PID=
MONITOR_PID=
HELPER_PIDS=()

dbus_require() {
	loopfs_require_root_loop
	loopfs_require_cmd dbus-daemon busctl setpriv
	[[ -x ${THINTRIMD:-} ]] || loopfs_skip "THINTRIMD (the built thintrimd) is not set"
	[[ -r ${TT_POLICY:-} ]] || loopfs_skip "TT_POLICY (the bus policy file) is not set"
}

# Stops what this library started, before loopfs_cleanup unmounts: thintrimd
# holds its mount points open while it trims. Keeps the exit status.
dbus_cleanup() {
	local rc=$? pid
	[[ -n $MONITOR_PID ]] && kill "$MONITOR_PID" 2>/dev/null
	for pid in "${HELPER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		timeout 10 tail --pid="$DAEMON_PID" -f /dev/null 2>/dev/null || kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	[[ -n $DBUS_PID ]] && kill "$DBUS_PID" 2>/dev/null
	if ((rc != 0)) && [[ -s ${TT_LOG:-} ]]; then
		echo "# --- thintrimd log ---"
		sed 's/^/# /' "$TT_LOG"
	fi
	return "$rc"
}

dbus_setup() {
	TT_DIR=$LOOPFS_RUN/dbus
	TT_STATE=$TT_DIR/state
	TT_CONFIG=$TT_DIR/thintrim.conf
	TT_LOG=$TT_DIR/thintrimd.log
	TT_MONITOR=$TT_DIR/monitor.json
	mkdir -p "$TT_DIR" "$TT_STATE"
	# The unprivileged caller must reach the socket.
	chmod 755 "$LOOPFS_RUN" "$TT_DIR"
	: >"$TT_CONFIG"
	: >"$TT_LOG"
	trap 'dbus_cleanup; loopfs_cleanup' EXIT
	sed -e "s|@SOCKET@|$TT_DIR/bus.sock|" -e "s|@POLICY@|$TT_POLICY|" \
		"${TT_BUS_CONF_IN:-$(dirname -- "${BASH_SOURCE[0]}")/system-bus.conf.in}" >"$TT_DIR/bus.conf"
	bus_start "$TT_DIR/bus.conf"
}

# bus_start CONF: the private bus (dbus-daemon forks into a session of its
# own, out of reach of the test's process group: tracked for the cleanup).
bus_start() {
	[[ -n $DBUS_PID ]] && kill "$DBUS_PID" 2>/dev/null
	rm -f "$TT_DIR/bus.sock"
	dbus-daemon --config-file="$1" --fork --print-pid=3 3>"$TT_DIR/bus.pid" ||
		loopfs_die "cannot start dbus-daemon"
	DBUS_PID=$(<"$TT_DIR/bus.pid")
	loopfs_track_pid "$DBUS_PID"
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$TT_DIR/bus.sock
	wait_until 20 busctl status org.freedesktop.DBus >/dev/null || loopfs_die "private bus does not answer"
}

dbus_test_setup() {
	local name=$1
	shift
	dbus_require
	(($# == 0)) || loopfs_require_mkfs "$@"
	loopfs_setup "$name"
	dbus_setup
}

dbus_data_fs() {
	loopfs_new_fs ext4 data 256M
	TT_MOUNTINFO=$TT_DIR/mountinfo
	loopfs_mountinfo "$TT_MOUNTINFO"
	printf '[Schedule]\nBootDelay=1w\nFreedSpaceThreshold=0\n' >"$TT_CONFIG"
}

helper_started() {
	HELPER_PIDS+=("$1")
	loopfs_track_pid "$1"
}

# wait_until TIMEOUT CMD...: run CMD every 0.1 s until it succeeds (0) or
# TIMEOUT seconds pass (1).
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

name_owned() {
	[[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
		NameHasOwner s "$TT_NAME" 2>/dev/null) == "b true" ]]
}

daemon_start() {
	echo "--- thintrimd $* ---" >>"$TT_LOG"
	"$THINTRIMD" --config "$TT_CONFIG" --state-dir "$TT_STATE" --log-level debug "$@" \
		>>"$TT_LOG" 2>&1 &
	DAEMON_PID=$!
	loopfs_track_pid "$DAEMON_PID"
	local _
	for _ in $(seq 1 100); do
		name_owned && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || loopfs_die "thintrimd exited at start: $(tail -3 "$TT_LOG")"
		sleep 0.1
	done
	loopfs_die "thintrimd did not take its bus name within 10 s"
}

# daemon_stop [TIMEOUT]: SIGTERM and wait; returns thintrimd's exit status
# (124 when it did not exit in time, then it is killed).
daemon_stop() {
	local pid=$DAEMON_PID rc=0
	kill -TERM "$pid" 2>/dev/null || return 0
	if ! timeout "${1:-10}" tail --pid="$pid" -f /dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		DAEMON_PID=
		return 124
	fi
	wait "$pid" 2>/dev/null || rc=$?
	DAEMON_PID=
	return "$rc"
}

monitor_start() {
	[[ -n $MONITOR_PID ]] && kill "$MONITOR_PID" 2>/dev/null
	: >"$TT_MONITOR"
	busctl monitor --json=short "$TT_NAME" >"$TT_MONITOR" 2>"$TT_DIR/monitor.err" &
	MONITOR_PID=$!
	loopfs_track_pid "$MONITOR_PID"
	wait_until 20 grep -q "Monitoring" "$TT_DIR/monitor.err" || loopfs_die "busctl monitor did not start"
}

# signal_data MEMBER: the payload ("data":[...]) of every recorded signal named
# MEMBER, one JSON array per line.
signal_data() {
	grep '"type":"signal"' "$TT_MONITOR" | grep "\"member\":\"$1\"" |
		sed -n 's/.*"payload":{"type":"[^"]*","data":\(.*\)}}$/\1/p'
}

# job_result JOB: the result of JOB from its JobFinished signal; fails while
# there is none.
job_result() {
	local line
	line=$(signal_data JobFinished | grep "^\[$1,") || return 1
	line=${line#"[$1,\""}
	echo "${line%%\"*}"
}

wait_job() {
	wait_until "${2:-60}" job_result "$1" >/dev/null
}

# prop PATH INTERFACE NAME: the value alone (no type; strings unquoted).
prop() {
	local out
	out=$(busctl get-property "$TT_NAME" "$1" "$2" "$3") || return 1
	out=${out#* }
	out=${out#\"}
	echo "${out%\"}"
}

mprop() { prop "$TT_PATH" "$TT_MANAGER" "$1"; }

# mprop_is NAME VALUE: the Manager property NAME is VALUE now (for wait_until,
# which runs it again each time: `wait_until 5 test "$(mprop X)" = V` would
# read the property once).
mprop_is() { [[ $(mprop "$1") == "$2" ]]; }

# call METHOD SIGNATURE ARGS...: a Manager method; prints the reply.
call() {
	local method=$1
	shift
	busctl call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" "$method" "$@"
}

# trim_job MOUNT [OPTIONS-COUNT KEY TYPE VALUE...]: Manager.Trim of one mount
# point as a user types it; prints the job id.
trim_job() {
	local mp=$1 out
	shift
	if [[ $# -eq 0 ]]; then set -- 0; fi
	out=$(call Trim 'asa{sv}' 1 "$mp" "$@") || return 1
	echo "${out#t }"
}

fs_path() {
	local out
	out=$(call GetFilesystem s "$1") || return 1
	out=${out#o \"}
	echo "${out%\"}"
}

# bus_error CMD...: the error name of a failing busctl call (busctl prints
# only the message; its debug log has the name). Empty when it succeeded.
bus_error() {
	SYSTEMD_LOG_LEVEL=debug "$@" 2>&1 >/dev/null | sed -n 's/.*type=error .* error-name=\([^ ]*\) .*/\1/p' | head -1
}

quiet() { "$@" >/dev/null; }

as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

# notify_listen SOCKET FILE [NAME]: receive sd_notify() datagrams on SOCKET
# (for NOTIFY_SOCKET) and append each to FILE, one line per assignment. With
# NAME, a datagram with READY=1 first stops its sender (SIGSTOP, by the pid
# the kernel attached), asks the bus whether NAME has an owner, writes
# "NAME_OWNED_AT_READY=b true" (or "b false", or "error ...") to FILE and lets
# the sender go on (SIGCONT): the answer is the bus's state when READY=1 came.
notify_listen() {
	python3 -c '
import os, signal, socket, struct, subprocess, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
name = sys.argv[3] if len(sys.argv) > 3 else ""
with open(sys.argv[2], "a") as out:
    while True:
        data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(struct.calcsize("3i")))
        text = data.decode()
        if name and "READY=1" in text.split("\n"):
            pid = None
            for level, kind, cred in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cred[:struct.calcsize("3i")])[0]
            if pid is None:
                owned = "error no sender pid"
            else:
                os.kill(pid, signal.SIGSTOP)
                try:
                    owned = subprocess.run(["busctl", "call", "org.freedesktop.DBus",
                        "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                        "s", name], capture_output=True, text=True, timeout=10).stdout.strip()
                except Exception as e:
                    owned = "error " + str(e)
                finally:
                    os.kill(pid, signal.SIGCONT)
            out.write("NAME_OWNED_AT_READY=" + owned + "\n")
        out.write(text + "\n")
        out.flush()
' "$@" &
	helper_started $!
	# python3 can take seconds to start on a loaded machine.
	wait_until 30 test -S "$1" || loopfs_die "notify listener did not start"
}

# Lines of the daemon's log since the last daemon_start.
daemon_log() {
	awk '/^--- thintrimd /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$TT_LOG"
}
