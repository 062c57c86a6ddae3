#!/bin/bash
# State that grows forever (issue 10, item 9): a filesystem not mounted for
# ForgetAfter is forgotten, from state.json and from the metrics file, and the
# daemon logs it; a state file from before thintrim recorded when it last saw
# a filesystem still loads, and its entries get a full ForgetAfter from the
# first look; what is mounted keeps its history.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

loopfs_require_cmd python3
dbus_test_setup thintrim-robust-forget ext4
loopfs_new_fs ext4 kept 128M
mnt=$LOOPFS_MNT
kept_dev=$LOOPFS_DEV
uuid=$(blkid -s UUID -o value "$kept_dev")
metrics=$TT_DIR/thintrim.prom
state=$TT_STATE/state.json

config() { # FORGET-AFTER
	cat >"$TT_CONFIG" <<CONF
[Schedule]
BootDelay=1w
ForgetAfter=$1
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
[Metrics]
MetricsFile=$metrics
CONF
}
# keys: the identities in state.json, sorted, one line
keys() { python3 -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1]))["filesystems"])))' "$state"; }
field() { # IDENTITY KEY
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["filesystems"][sys.argv[2]].get(sys.argv[3], "absent"))' \
		"$state" "$1" "$2"
}

# A version-1 file as an older thintrim wrote it (no last_seen, no source),
# plus one seen ten days ago.
ten_days_ago=$(( ($(date +%s) - 10 * 86400) * 1000000 ))
cat >"$state" <<JSON
{"version": 1, "next_job_id": 5, "total_trimmed_bytes": 4096,
 "filesystems": {
  "gone-long-ago": {"mount_point": "/mnt/gone", "source": "/dev/gone", "last_seen": $ten_days_ago,
                    "last_trim_result": "success", "trim_count": 3, "total_trimmed_bytes": 1024},
  "older-thintrim": {"mount_point": "/mnt/older", "last_trim_result": "success", "trim_count": 1,
                     "total_trimmed_bytes": 2048}
 }}
JSON
config 1d
daemon_start
trim_job "$mnt" >/dev/null
assert_true "a trim of the mounted filesystem finishes" wait_until 30 sh -c \
	"busctl get-property $TT_NAME $(fs_path "$mnt") $TT_FS LastTrimResult | grep -q success"
assert_true "the daemon saves on stop" daemon_stop
assert_eq "not seen for 10 days with ForgetAfter=1d: forgotten; the old-format entry and the mounted one kept" \
	"$uuid older-thintrim" "$(keys)"
assert_match "the forgetting is logged with the key, the mount point and the setting" \
	"forgot gone-long-ago \(/mnt/gone\): not mounted for longer than ForgetAfter=1d" "$(daemon_log)"
assert_cmp "the old-format entry got a sighting time (its grace starts now)" \
	"$(field older-thintrim last_seen)" -gt $(( ($(date +%s) - 60) * 1000000 ))
assert_no_match "the metrics file no longer lists it" "gone-long-ago" "$(cat "$metrics")"
assert_match "the metrics file lists the mounted one" "identity=\"$uuid\"" "$(cat "$metrics")"

# ForgetAfter=2s: the old-format entry, not mounted since, is forgotten at
# the next look at the mount table (the start, or a mount 3 s later); the
# mounted filesystem stays.
config 2s
daemon_start
sleep 3
loopfs_new_fs ext4 trigger 64M
assert_true "ForgetAfter=2s forgets what was not mounted for 2 s" \
	wait_until 10 sh -c "grep -q 'forgot older-thintrim' '$TT_LOG'"
assert_true "the daemon saves on stop" daemon_stop
assert_eq "only the mounted filesystem's history is left" "$uuid" "$(keys)"
assert_eq "with its trim" 1 "$(field "$uuid" trim_count)"
assert_eq "and the device it was seen on" "$kept_dev" "$(field "$uuid" source)"
loopfs_finish
