#!/bin/bash
# Trimming through the real thintrimd, as a user would: busctl and the
# thintrim CLI queue jobs, the backing image of a loop-mounted filesystem
# shrinks, the signals and properties tell about it, history survives a
# restart. The daemon reads the kernel's mount table here (libmount's
# monitor) with [Filesystems] Include= limited to this test's mounts.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../lib/loopfs.sh
source "$here/../lib/loopfs.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_require
loopfs_require_mkfs ext4
loopfs_setup thintrim-dbus-trim
dbus_setup

loopfs_new_fs ext4 data 1G
mnt=$LOOPFS_MNT
img=$LOOPFS_IMG

# BootDelay=0: nothing but the slot holds a never-trimmed filesystem back,
# which this test checks first; the slots are days away, so only our calls
# trim. RandomizedDelay=0 puts every slot at the start of a week.
cat >"$TT_CONFIG" <<EOF
[Schedule]
BootDelay=0
RandomizedDelay=0
FreedSpaceThreshold=0
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
[Metrics]
MetricsFile=$TT_DIR/thintrim.prom
EOF
monitor_start
umask 077 # as the unit sets it: the metrics file must still be world-readable
daemon_start
umask 022
path=$(fs_path "$mnt")

# --- the schedule: a new daemon with no history does not trim at start -------------
sleep 3
assert_eq "a never-trimmed filesystem is not trimmed at start" "never" \
	"$(prop "$path" "$TT_FS" LastTrimResult)"
assert_eq "no job started" "" "$(signal_data JobStarted)"
slot=$(prop "$path" "$TT_FS" NextScheduledTrim)
assert_cmp "NextScheduledTrim is its slot, in the future" "$slot" -gt $(( $(date +%s) * 1000000 ))
assert_cmp "within one Interval" "$slot" -le $(( ($(date +%s) + 7 * 86400) * 1000000 ))
assert_eq "with RandomizedDelay=0 the slot starts a week (Monday 00:00 UTC)" "1 00:00:00" \
	"$(date -u -d "@$((slot / 1000000))" '+%u %T')"
assert_eq "Manager.NextScheduledTrim is the earliest of the filesystems'" "$slot" "$(mprop NextScheduledTrim)"

# --- busctl: as the README shows it ------------------------------------------------
loopfs_write_mib "$mnt/blob" 200
before=$(loopfs_alloc_bytes "$img")
loopfs_delete "$mnt/blob"
job=$(trim_job "$mnt")
assert_match "Trim returns a job id at once" '^[0-9]+$' "$job"
assert_true "the job finishes" wait_job "$job"
after=$(loopfs_alloc_bytes "$img")
assert_eq "JobFinished says success" "success" "$(job_result "$job")"
assert_cmp "the image shrank by at least 150 MiB ($(loopfs_human "$before") -> $(loopfs_human "$after"))" \
	$((before - after)) -ge $((150 * 1048576))
assert_cmp "LastTrimmedBytes > 0" "$(prop "$path" "$TT_FS" LastTrimmedBytes)" -gt 0
assert_eq "LastTrimResult" "success" "$(prop "$path" "$TT_FS" LastTrimResult)"
assert_cmp "LastTrimDuration > 0" "$(prop "$path" "$TT_FS" LastTrimDuration)" -gt 0
assert_cmp "after a trim the next slot is at least Interval/2 ahead" \
	"$(prop "$path" "$TT_FS" NextScheduledTrim)" -gt $(( ($(date +%s) + 84 * 3600) * 1000000 ))
assert_eq "LastRunResult" "success" "$(mprop LastRunResult)"
assert_eq "State is idle again" "idle" "$(mprop State)"
assert_match "JobStarted($job, [$mnt])" "^\[$job,\[\"$mnt\"\]\]$" "$(signal_data JobStarted | grep "^\[$job,")"
assert_match "FilesystemTrimmed($job, $mnt, bytes, duration, success, message)" \
	"^\[$job,\"$mnt\",[1-9][0-9]*,[0-9]+,\"success\",\"\"\]$" "$(signal_data FilesystemTrimmed | grep "^\[$job,")"
assert_match "Progress was published" '"Progress":\{"type":"d","data":[01]' "$(cat "$TT_MONITOR")"
assert_match "the reply (job id) went out before JobStarted" "method_return.*\"data\":\[$job\].*JobStarted" \
	"$(grep -E "\"reply_cookie\"|JobStarted" "$TT_MONITOR" | tr -d '\n')"

metrics=$(cat "$TT_DIR/thintrim.prom" 2>/dev/null)
assert_match "the metrics file has the last trim" \
	"thintrim_last_trimmed_bytes\{mountpoint=\"$mnt\",identity=\"[^\"]+\"\} [1-9]" "$metrics"
assert_match "and its success" "thintrim_last_trim_success\{mountpoint=\"$mnt\",[^}]*\} 1" "$metrics"
assert_eq "the metrics file is readable for node_exporter despite the daemon's umask 077" \
	644 "$(stat -c %a "$TT_DIR/thintrim.prom")"
assert_match "and HELP/TYPE lines" "# TYPE thintrim_trimmed_bytes_total counter" "$metrics"

# --- Filesystem.Trim and a dry run ------------------------------------------------
count=$(prop "$path" "$TT_FS" TrimCount)
total=$(prop "$path" "$TT_FS" TotalTrimmedBytes)
run_total=$(mprop TotalTrimmedBytes)
last_bytes=$(prop "$path" "$TT_FS" LastTrimmedBytes)
out=$(busctl call "$TT_NAME" "$path" "$TT_FS" Trim 'a{sv}' 1 dry_run b true)
dry=${out#t }
assert_true "a dry run through Filesystem.Trim finishes" wait_job "$dry"
assert_match "a dry run says what it would do" "\[$dry,\"$mnt\",0,[0-9]+,\"success\",\"dry run: would issue" \
	"$(signal_data FilesystemTrimmed | grep "^\[$dry,")"
assert_cmp "the real trim before was counted" "$count" -ge 1
assert_eq "a dry run is not counted: TrimCount unchanged" "$count" "$(prop "$path" "$TT_FS" TrimCount)"
assert_eq "a dry run is not counted: TotalTrimmedBytes unchanged" "$total" "$(prop "$path" "$TT_FS" TotalTrimmedBytes)"
assert_eq "a dry run is not counted: Manager.TotalTrimmedBytes unchanged" "$run_total" "$(mprop TotalTrimmedBytes)"
assert_eq "a dry run is not counted: LastTrimmedBytes unchanged" "$last_bytes" "$(prop "$path" "$TT_FS" LastTrimmedBytes)"

# --- the CLI -----------------------------------------------------------------------
loopfs_write_mib "$mnt/blob" 200
before=$(loopfs_alloc_bytes "$img")
loopfs_delete "$mnt/blob"
out=$("$THINTRIM" trim "$mnt" 2>&1)
rc=$?
after=$(loopfs_alloc_bytes "$img")
assert_eq "thintrim trim through the daemon exits 0" 0 "$rc"
assert_match "thintrim trim prints what was trimmed" "^$mnt: .* trimmed in " "$out"
assert_cmp "thintrim trim: the image shrank ($(loopfs_human "$before") -> $(loopfs_human "$after"))" \
	$((before - after)) -ge $((150 * 1048576))
json=$("$THINTRIM" trim --json "$mnt")
assert_match "thintrim trim --json reports the job's result" '"result": "success"' "$json"
out=$("$THINTRIM" trim --no-wait "$mnt")
assert_match "thintrim trim --no-wait prints the job" "^Queued job [0-9]+\.$" "$out"
wait_job "${out//[^0-9]/}"
out=$("$THINTRIM" trim /nonexistent 2>&1)
rc=$?
assert_eq "thintrim trim of a non-mount point fails with 1" 1 "$rc"
assert_match "the CLI says why, in words" "/nonexistent is not a mount point" "$out"
assert_no_match "the CLI shows no D-Bus error name" "org\.(thintrim|freedesktop)" "$out"
out=$(as_nobody "$THINTRIM" trim "$mnt" 2>&1)
assert_match "thintrim trim as nobody: access denied, in words" "needs root or the polkit" "$out"
out=$("$THINTRIM" status)
assert_match "thintrim status shows the filesystem" "$mnt +ext4 " "$out"
assert_match "thintrim status shows the state" "State: idle" "$out"
out=$(as_nobody "$THINTRIM" list)
assert_match "thintrim list (as nobody) reads the daemon" "$mnt +ext4 " "$out"
count=$(prop "$path" "$TT_FS" TrimCount)

# expect_early_trim JOB BEFORE WHAT: WHAT makes job JOB start by itself on
# $mnt (not before 20 times the last trim's duration, a second or so here,
# even with EarlyTrimSpacing=0), and the image, BEFORE bytes, shrinks by
# 100 MiB or more.
expect_early_trim() {
	local after
	assert_true "$3 starts a trim by itself" wait_job "$1" 60
	assert_match "the scheduled job $1 trimmed this filesystem" "^\[$1,\[\"$mnt\"\]\]$" \
		"$(signal_data JobStarted | grep "^\[$1,")"
	after=$(loopfs_alloc_bytes "$img")
	assert_cmp "and the image shrank ($(loopfs_human "$2") -> $(loopfs_human "$after"))" \
		$(($2 - after)) -ge $((100 * 1048576))
}

# --- early trim: free space grew by FreedSpaceThreshold ------------------------------
printf '[Schedule]\nFreedSpaceThreshold=100M\nCheckInterval=1s\nEarlyTrimSpacing=0\n' >>"$TT_CONFIG"
quiet call Reload
loopfs_write_mib "$mnt/blob" 150
job=$(trim_job "$mnt")
wait_job "$job"
before=$(loopfs_alloc_bytes "$img")
loopfs_delete "$mnt/blob"
expect_early_trim $((job + 1)) "$before" "freeing more than FreedSpaceThreshold"

# --- early trim: a file written and another as large deleted ----------------------
# Free space does not grow; what was freed was written first, and the disk's
# write counter shows it.
loopfs_write_mib "$mnt/old" 150
job=$(trim_job "$mnt")
wait_job "$job"
sleep 2 # the samples after that trim
free_at_trim=$(stat -f -c '%a' "$mnt")
loopfs_write_mib "$mnt/new" 150
before=$(loopfs_alloc_bytes "$img")
loopfs_delete "$mnt/old"
expect_early_trim $((job + 1)) "$before" "writing 150 MiB and deleting 150 MiB"
free_now=$(stat -f -c '%a' "$mnt")
assert_cmp "though free space did not grow (blocks free: $free_at_trim at the trim, $free_now now)" \
	"$free_now" -le $((free_at_trim + 10 * 1048576 / $(stat -f -c '%S' "$mnt")))
loopfs_delete "$mnt/new"
job=$(trim_job "$mnt")
wait_job "$job"
count=$(prop "$path" "$TT_FS" TrimCount)

# --- early trims keep EarlyTrimSpacing ---------------------------------------------------
printf 'EarlyTrimSpacing=1h\n' >>"$TT_CONFIG"
quiet call Reload
loopfs_write_mib "$mnt/blob" 150
job=$(trim_job "$mnt")
wait_job "$job"
count=$(prop "$path" "$TT_FS" TrimCount)
loopfs_delete "$mnt/blob"
sleep 4 # CheckInterval=1s: free space was sampled since
assert_eq "within EarlyTrimSpacing freed space starts no trim" "$count" "$(prop "$path" "$TT_FS" TrimCount)"
# The 150 MiB deleted since the trim wait on the host: visible before the next trim.
freed=$(prop "$path" "$TT_FS" FreedSinceLastTrim)
assert_cmp "FreedSinceLastTrim counts the 150 MiB deleted since the trim" "$freed" -ge $((140 * 1048576))
metrics=$(cat "$TT_DIR/thintrim.prom" 2>/dev/null)
assert_match "the metrics file has the freed-but-not-trimmed estimate (sampled, not only after a trim)" \
	"thintrim_freed_since_last_trim_bytes\{mountpoint=\"$mnt\",identity=\"[^\"]+\"\} $freed" "$metrics"
out=$("$THINTRIM" status --bytes)
assert_match "thintrim status has the FREED SINCE column" "VERIFY +FREED SINCE +NEXT TRIM" "$out"
assert_match "and shows the estimate in it" "$mnt +ext4 .* $freed +in " "$out"
next=$(prop "$path" "$TT_FS" NextScheduledTrim)
last=$(prop "$path" "$TT_FS" LastTrimFinished)
assert_cmp "NextScheduledTrim is EarlyTrimSpacing after the last trim (not before)" "$next" -ge $((last + 3600 * 1000000 - 5000000))
assert_cmp "NextScheduledTrim is EarlyTrimSpacing after the last trim (not after)" "$next" -le $((last + 3600 * 1000000 + 5000000))

# --- TrimBefore=: a deadline trims freed space, whatever EarlyTrimSpacing says -------
# The 150 MiB above wait for EarlyTrimSpacing=1h. A deadline on a minute
# boundary 60-120 s ahead, with a lead that starts its trim 15 s from now.
now=$(date +%s)
deadline=$(((now / 60 + 2) * 60))
lead=$((deadline - now - 15))
printf 'TrimBefore=%s\nTrimBeforeLead=%ss\n' "$(date -d "@$deadline" +%H:%M)" "$lead" >>"$TT_CONFIG"
quiet call Reload
duration=$(prop "$path" "$TT_FS" LastTrimDuration)
assert_eq "NextScheduledTrim is TrimBeforeLead plus twice the last trim's duration before the deadline" \
	$(((deadline - lead) * 1000000 - 2 * duration)) "$(prop "$path" "$TT_FS" NextScheduledTrim)"
trimmed_since() { (($(prop "$path" "$TT_FS" TrimCount) > $1)); }
assert_true "the deadline's trim runs by itself" wait_until 60 trimmed_since "$count"
assert_match "the log names the reason" "is due \(deadline\)" "$(cat "$TT_LOG")"
assert_cmp "and it trimmed what was freed" "$(prop "$path" "$TT_FS" LastTrimmedBytes)" -ge $((140 * 1048576))
count=$(prop "$path" "$TT_FS" TrimCount)

# --- history survives a restart -----------------------------------------------------
bytes=$(prop "$path" "$TT_FS" LastTrimmedBytes)
total=$(prop "$path" "$TT_FS" TotalTrimmedBytes)
finished=$(prop "$path" "$TT_FS" LastTrimFinished)
run_total=$(mprop TotalTrimmedBytes)
daemon_stop
assert_eq "thintrimd stops with 0 on SIGTERM" 0 "$?"
daemon_start
path=$(fs_path "$mnt")
assert_eq "after a restart: LastTrimmedBytes" "$bytes" "$(prop "$path" "$TT_FS" LastTrimmedBytes)"
assert_eq "after a restart: TotalTrimmedBytes" "$total" "$(prop "$path" "$TT_FS" TotalTrimmedBytes)"
assert_eq "after a restart: LastTrimFinished" "$finished" "$(prop "$path" "$TT_FS" LastTrimFinished)"
assert_eq "after a restart: TrimCount" "$count" "$(prop "$path" "$TT_FS" TrimCount)"
assert_eq "after a restart: LastTrimResult" "success" "$(prop "$path" "$TT_FS" LastTrimResult)"
assert_eq "after a restart: Manager.TotalTrimmedBytes" "$run_total" "$(mprop TotalTrimmedBytes)"
assert_eq "after a restart: nothing is due, nothing runs" "idle" "$(mprop State)"

daemon_stop
loopfs_verify_cleanup
loopfs_finish
