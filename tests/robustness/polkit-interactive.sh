#!/bin/bash
# Polkit's password prompt (issue 10, item 11). The CLI lets polkit ask for a
# password (the D-Bus flag ALLOW_INTERACTIVE_AUTHORIZATION) unless
# --no-ask-password, and thintrimd passes it on to CheckAuthorization. A
# stand-in polkit on the private bus (fake-polkit) authorizes exactly the
# calls that allow interaction, as real polkit does once the user has typed
# the administrator's password in their agent. As an unprivileged user:
#   - without polkit: refused, saying polkit is missing and what to do;
#   - `thintrim trim MOUNT` works (polkit was allowed to ask);
#   - `thintrim trim --no-ask-password MOUNT` is AccessDenied, with a message
#     saying why and how to be asked;
#   - cancel/suspend/resume/reload carry the flag the same way (each call's
#     CheckAuthorization flags are checked, with and without the option).
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../lib/loopfs.sh
source "$here/../lib/loopfs.sh"
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

dbus_require
loopfs_require_mkfs ext4
[[ -x ${FAKE_POLKIT:-} ]] || loopfs_skip "FAKE_POLKIT (the built fake-polkit) is not set"
loopfs_setup thintrim-robust-polkit
# The private bus as lib.sh makes it, plus what the system bus's polkit
# policy allows: root owns org.freedesktop.PolicyKit1, and may call it.
bus_in=$LOOPFS_RUN/bus.conf.in
sed 's|</busconfig>|  <policy user="root">\n    <allow own="org.freedesktop.PolicyKit1"/>\n    <allow send_destination="org.freedesktop.PolicyKit1"/>\n  </policy>\n</busconfig>|' \
	"${TT_BUS_CONF_IN:-$here/../dbus/system-bus.conf.in}" >"$bus_in"
TT_BUS_CONF_IN=$bus_in
dbus_setup
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
# The user runs a copy anyone can execute, whatever the build tree's modes.
cli=$TT_DIR/thintrim
install -m 755 "$THINTRIM" "$cli"
user_thintrim() { as_nobody "$cli" "$@"; }

out=$(user_thintrim trim "$mnt" 2>&1)
assert_eq "no polkit: the user's trim fails (exit 1)" 1 "$?"
assert_match "no polkit: names the user and that polkit is not installed" \
	"uid 65534.* is not root, and polkit, which could authorize other users, is not installed" "$out"
assert_match "no polkit: says what to do" \
	"needs root or the polkit authorization org.thintrim.ThinTrim1.manage: run it with sudo, or have an administrator grant" "$out"

flags=$TT_DIR/polkit-flags
: >"$flags"
"$FAKE_POLKIT" "$flags" >>"$TT_DIR/fake-polkit.log" 2>&1 &
helper_started $!
polkit_up() { [[ $(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s org.freedesktop.PolicyKit1) == "b true" ]]; }
wait_until 5 polkit_up || loopfs_die "fake-polkit did not take its name"

out=$(user_thintrim trim "$mnt" 2>&1)
assert_eq "with polkit allowed to ask: the user's \`thintrim trim\` succeeds" 0 "$?"
assert_match "and prints the filesystem's result" "$mnt" "$out"
assert_eq "the daemon asked polkit with AllowUserInteraction" 1 "$(tail -n 1 "$flags")"

out=$(user_thintrim trim --no-ask-password "$mnt" 2>&1)
assert_eq "--no-ask-password: the user's trim fails (exit 1)" 1 "$?"
assert_eq "the daemon asked polkit without interaction" 0 "$(tail -n 1 "$flags")"
assert_match "--no-ask-password: the message says why" \
	"must authenticate first, and the call did not allow asking for a password" "$out"
assert_match "--no-ask-password: and how to be asked" "run it on a terminal without --no-ask-password" "$out"
assert_eq "busctl --allow-interactive-authorization=no is AccessDenied too" \
	org.freedesktop.DBus.Error.AccessDenied \
	"$(bus_error as_nobody busctl --allow-interactive-authorization=no call "$TT_NAME" "$TT_PATH" "$TT_MANAGER" Suspend)"

# flag_of CMD...: runs CMD (its output dropped); sets rc to its status and
# flag to the flags of the one CheckAuthorization it made ("none" or "several
# calls" otherwise).
flag_of() {
	local n
	n=$(wc -l <"$flags")
	"$@" >/dev/null 2>&1
	rc=$?
	case $(($(wc -l <"$flags") - n)) in
	0) flag=none ;;
	1) flag=$(tail -n 1 "$flags") ;;
	*) flag="several calls" ;;
	esac
}

# Cancel: a slow trim (16 MiB chunks at 8 MiB/s, 128 MiB) started by root.
running() { [[ $(mprop CurrentJob) == "$1" ]]; }
monitor_start
job=$(trim_job "$mnt" 2 chunk_size t $((16 * 1048576)) rate_limit t $((8 * 1048576)))
assert_true "a slow trim is running" wait_until 10 running "$job"
flag_of user_thintrim cancel --no-ask-password "$job"
assert_eq "\`thintrim cancel --no-ask-password\` asks polkit without interaction" 0 "$flag"
assert_eq "and is refused (exit 1)" 1 "$rc"
assert_eq "the job is still running" "$job" "$(mprop CurrentJob)"
flag_of user_thintrim cancel "$job"
assert_eq "the user's \`thintrim cancel\` asks polkit with AllowUserInteraction" 1 "$flag"
assert_eq "and works (exit 0)" 0 "$rc"
assert_true "the job ends" wait_job "$job" 20
assert_eq "cancelled" cancelled "$(job_result "$job")"

flag_of user_thintrim suspend
assert_eq "the user's \`thintrim suspend\` asks polkit with AllowUserInteraction" 1 "$flag"
assert_eq "and works" 0 "$rc"
assert_eq "State" suspended "$(mprop State)"
flag_of user_thintrim resume --no-ask-password
assert_eq "\`thintrim resume --no-ask-password\` asks polkit without interaction" 0 "$flag"
assert_eq "and is refused" 1 "$rc"
assert_eq "State still" suspended "$(mprop State)"
flag_of user_thintrim resume
assert_eq "the user's \`thintrim resume\` asks polkit with AllowUserInteraction" 1 "$flag"
assert_eq "and works" 0 "$rc"
assert_eq "State" idle "$(mprop State)"
flag_of user_thintrim reload
assert_eq "the user's \`thintrim reload\` asks polkit with AllowUserInteraction" 1 "$flag"
assert_eq "and works" 0 "$rc"
assert_eq "the daemon is still running" 0 "$(kill -0 "$DAEMON_PID"; echo $?)"
loopfs_finish
