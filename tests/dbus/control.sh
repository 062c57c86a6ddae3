#!/bin/bash
# Stopping a running trim at a chunk boundary, and going on from there:
# Cancel, Suspend/Resume (across a restart, and back to back), SIGTERM, kill -9,
# and an unmount under a running trim; Cancel and resume on btrfs at a block
# group boundary. A job resumed after a restart waits for BootDelay. The trims are made slow with small chunks and a rate limit on
# xfs, which reports all free space as trimmed every time.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../lib/loopfs.sh
source "$here/../lib/loopfs.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_require
loopfs_require_mkfs xfs
loopfs_setup thintrim-dbus-control
dbus_setup

# 8 allocation groups of 128 MiB: 8 chunks of about 120 MiB free space each,
# at 100 MiB/s a trim takes about 8 s and waits about a second per chunk.
loopfs_image slow 1G >/dev/null
loopfs_attach "$LOOPFS_IMG" >/dev/null
out=$(mkfs.xfs -q -f -K -d agcount=8 -L tt-slow -- "$LOOPFS_DEV" 2>&1) || loopfs_die "mkfs.xfs: $out"
mnt=$(loopfs_mount "$LOOPFS_DEV" slow nodiscard xfs)
slow=(2 chunk_size t $((128 * 1048576)) rate_limit t $((100 * 1048576)))

cat >"$TT_CONFIG" <<EOF
[Schedule]
BootDelay=1w
FreedSpaceThreshold=0
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
EOF
monitor_start
daemon_start
path=$(fs_path "$mnt")

# running_chunked JOB: JOB is running and has finished a chunk (Progress > 0).
# shellcheck disable=SC2317 # called through wait_until
running_chunked() {
	[[ $(mprop CurrentJob) == "$1" ]] && [[ $(mprop Progress) != 0 ]]
}

offset_of() { sed -n 's/.* at offset \([0-9]*\).*/\1/p' <<<"$1"; }

# cancel_slow_trim MP PATH OPTIONS...: starts a trim of MP with OPTIONS (a
# slow one), cancels it once it has done a chunk and checks it stops at the
# next chunk boundary; sets job, message (LastTrimMessage) and offset.
cancel_slow_trim() {
	local mp=$1 fs=$2 start
	shift 2
	job=$(trim_job "$mp" "$@")
	assert_true "a slow trim of $mp is running and has done a chunk" wait_until 20 running_chunked "$job"
	start=$SECONDS
	call Cancel t 0 >/dev/null
	assert_true "Cancel(0) ends the running job" wait_job "$job" 10
	assert_cmp "at the next chunk boundary, not at the end (${SECONDS}s - ${start}s)" $((SECONDS - start)) -le 3
	assert_eq "JobFinished says cancelled" "cancelled" "$(job_result "$job")"
	message=$(prop "$fs" "$TT_FS" LastTrimMessage)
	offset=$(offset_of "$message")
}

# trim_resumes MP OFFSET: the next trim of MP succeeds, continuing at OFFSET.
trim_resumes() {
	local job
	job=$(trim_job "$1")
	assert_true "the next trim of $1 runs" wait_job "$job"
	assert_eq "and succeeds" "success" "$(job_result "$job")"
	assert_match "it continued from the cursor" "resuming the trim at offset $2" "$(daemon_log)"
}

# --- Cancel ------------------------------------------------------------------------
cancel_slow_trim "$mnt" "$path" "${slow[@]}"
assert_match "FilesystemTrimmed says cancelled" "^\[$job,\"$mnt\",[0-9]+,[0-9]+,\"cancelled\"," \
	"$(signal_data FilesystemTrimmed | grep "^\[$job,")"
assert_eq "LastTrimResult" "cancelled" "$(prop "$path" "$TT_FS" LastTrimResult)"
assert_cmp "the cursor is past the start ($message)" "${offset:-0}" -gt 0
assert_cmp "and short of the end" "${offset:-0}" -lt $((1024 * 1048576))
trim_resumes "$mnt" "$offset"

# --- Suspend, restart, Resume -----------------------------------------------------
job=$(trim_job "$mnt" "${slow[@]}")
assert_true "a slow trim is running again" wait_until 20 running_chunked "$job"
call Suspend >/dev/null
assert_eq "State is suspended at once" "suspended" "$(mprop State)"
assert_true "the trim stops at a chunk boundary" wait_until 3 mprop_is CurrentJob 0
message=$(prop "$path" "$TT_FS" LastTrimMessage)
offset=$(offset_of "$message")
assert_match "the filesystem remembers where ($message)" "^suspended at offset [1-9]" "$message"
assert_eq "the job is not finished" "" "$(job_result "$job")"
assert_eq "nothing is scheduled while suspended" "0" "$(mprop NextScheduledTrim)"
assert_match "the state file says suspended" '"suspended": true' "$(cat "$TT_STATE/state.json")"
daemon_stop
assert_eq "stopping while suspended exits 0" 0 "$?"
monitor_start
daemon_start
assert_eq "still suspended after a restart" "suspended" "$(mprop State)"
sleep 1
assert_eq "nothing runs while suspended" "" "$(signal_data JobStarted)"
call Resume >/dev/null
sleep 1
assert_eq "a job from before the restart waits for BootDelay (1w)" "" "$(signal_data JobStarted)"
sed -i 's/^BootDelay=1w$/BootDelay=0/' "$TT_CONFIG"
call Reload >/dev/null
assert_true "with BootDelay=0 the job goes on, under its id" wait_job "$job" 30
assert_eq "and succeeds" "success" "$(job_result "$job")"
assert_match "from the remembered position" "resuming the trim at offset $offset" "$(daemon_log)"
assert_eq "State is idle" "idle" "$(mprop State)"

# --- Suspend and Resume back to back --------------------------------------------------
job=$(trim_job "$mnt" "${slow[@]}")
assert_true "a slow trim is running" wait_until 20 running_chunked "$job"
call Suspend >/dev/null
call Resume >/dev/null
assert_true "Suspend+Resume at once: the job finishes" wait_job "$job" 30
assert_eq "with success" "success" "$(job_result "$job")"

# --- SIGTERM -----------------------------------------------------------------------
job=$(trim_job "$mnt" "${slow[@]}")
assert_true "a slow trim is running" wait_until 20 running_chunked "$job"
start=$SECONDS
daemon_stop 10
assert_eq "SIGTERM during a trim: exit 0" 0 "$?"
assert_cmp "within 5 s, at the chunk boundary" $((SECONDS - start)) -le 5
state=$(tr -d '\n' <"$TT_STATE/state.json")
assert_match "the job is remembered" "\"pending_job\": \{[^}]*\"id\": $job" "$state"
assert_match "with its cursor" "\"resume_from\": [1-9]" "$state"
monitor_start
daemon_start
assert_true "after the restart (BootDelay=0) the job goes on by itself" wait_job "$job" 30
assert_eq "and succeeds" "success" "$(job_result "$job")"
assert_match "from where it stopped" "resuming the trim at offset [1-9]" "$(daemon_log)"

# --- kill -9 --------------------------------------------------------------------------
# A whole trim of this xfs reports all its free space; one resumed after a kill
# only the part after the cursor saved before the kill (at most every 5 s).
job=$(trim_job "$mnt")
assert_true "an unthrottled trim runs" wait_job "$job" 30
full=$(signal_data FilesystemTrimmed | grep "^\[$job," | cut -d, -f3)
# progress_at_least JOB FRACTION: JOB runs and is at least FRACTION through.
# shellcheck disable=SC2317 # called through wait_until
progress_at_least() {
	[[ $(mprop CurrentJob) == "$1" ]] && awk -v p="$(mprop Progress)" -v f="$2" 'BEGIN { exit !(p >= f) }'
}
job=$(trim_job "$mnt" "${slow[@]}")
# Chunks of 128 MiB at about 1.2 s each: the boundary after 6 of 8 is past 5 s.
assert_true "a slow trim is three quarters through" wait_until 30 progress_at_least "$job" 0.74
kill -KILL "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
saved=$(tr -d '\n' <"$TT_STATE/state.json" | sed -n 's/.*"resume_from": \([0-9]*\).*/\1/p')
assert_cmp "a cursor was saved before the kill ($saved)" "${saved:-0}" -gt 0
monitor_start
daemon_start
assert_true "after the restart the killed job goes on" wait_job "$job" 30
assert_eq "and succeeds" "success" "$(job_result "$job")"
assert_match "from the saved cursor" "resuming the trim at offset $saved" "$(daemon_log)"
rest=$(signal_data FilesystemTrimmed | grep "^\[$job," | cut -d, -f3)
assert_cmp "it reports only the rest ($rest of $full bytes)" "${rest:-0}" -lt $((full / 2))
assert_cmp "which is not nothing" "${rest:-0}" -gt 0

# --- an unmount under a running trim ------------------------------------------------
job=$(trim_job "$mnt" "${slow[@]}")
assert_true "a slow trim is running" wait_until 20 running_chunked "$job"
# Lazily: the daemon holds the mount point open while it trims.
umount -l "$mnt"
assert_true "the job ends" wait_job "$job" 10
assert_eq "as failed" "failed" "$(job_result "$job")"
assert_match "FilesystemTrimmed says it was unmounted" "\"failed\",\"[^\"]*was unmounted during the trim\"" \
	"$(signal_data FilesystemTrimmed | grep "^\[$job,")"
assert_true "the daemon lives on" name_owned
assert_eq "and is idle" "idle" "$(mprop State)"
assert_eq "LastRunResult" "failed" "$(mprop LastRunResult)"
assert_true "the filesystem's object is gone" \
	wait_until 5 sh -c "! busctl tree --list $TT_NAME | grep -qx '$path'"

# --- btrfs: cancel and resume at a block group boundary -----------------------------
# FITRIM's range on btrfs is its logical address space: the daemon cuts it at
# block group boundaries read from the chunk tree. 600 MiB written and deleted
# leave about eight data block groups of about 112 MiB free; with 64 MiB
# chunks (each call covers at least one whole group) at 100 MiB/s the trim
# takes about 8 s.
# Where btrfs cannot run, the checks before this section still count (a
# failure fails the test) but the test as a whole is skipped, not passed.
if ! command -v mkfs.btrfs >/dev/null 2>&1 || ! command -v btrfs >/dev/null 2>&1; then
	no_btrfs="mkfs.btrfs or btrfs not found (btrfs-progs missing)"
elif ! grep -qw btrfs /proc/filesystems && ! { modprobe btrfs 2>/dev/null && grep -qw btrfs /proc/filesystems; }; then
	no_btrfs="kernel has no btrfs support"
else
	no_btrfs=
fi
if [[ -n $no_btrfs ]]; then
	daemon_stop
	loopfs_verify_cleanup
	((LOOPFS_FAILURES == 0)) || loopfs_finish
	loopfs_skip "$no_btrfs: the btrfs cancel/resume section cannot run ($LOOPFS_CHECKS checks before it passed)"
fi
loopfs_image btrfs 1G >/dev/null
loopfs_attach "$LOOPFS_IMG" >/dev/null
out=$(mkfs.btrfs -q -f -L tt-btrfs -- "$LOOPFS_DEV" 2>&1) || loopfs_die "mkfs.btrfs: $out"
bmnt=$(loopfs_mount "$LOOPFS_DEV" btrfs nodiscard btrfs)
loopfs_write_mib "$bmnt/fill" 600 >/dev/null
rm -f -- "$bmnt/fill"
sync
# Block group ends: where a chunk of the plan may stop.
group_ends=$(btrfs inspect-internal dump-tree -t chunk "$LOOPFS_DEV" |
	awk '/CHUNK_ITEM/ { start = $6 + 0 } /^[ \t]*length / { print start + $2 }')
assert_true "the daemon publishes the btrfs filesystem" wait_until 10 fs_path "$bmnt"
bpath=$(fs_path "$bmnt")
cancel_slow_trim "$bmnt" "$bpath" 2 chunk_size t $((64 * 1048576)) rate_limit t $((100 * 1048576))
assert_cmp "the cursor is past the first block group ($message)" "${offset:-0}" -gt 0
assert_true "it stands at the end of a block group ($offset; ends: ${group_ends//$'\n'/ })" \
	grep -qx -- "${offset:-none}" <<<"$group_ends"
trim_resumes "$bmnt" "$offset"

daemon_stop
loopfs_verify_cleanup
loopfs_finish
