#!/bin/bash
# The metrics file (issue 10, item 10): a symlink planted at the temporary
# name next to MetricsFile= made thintrimd truncate and chmod the file it
# pointed to. Now the temporary file is created with O_EXCL|O_NOFOLLOW: the
# target is untouched, the metrics file is written (0644 under umask 077),
# no temporary file is left, and the daemon keeps answering.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

dbus_test_setup thintrim-robust-metrics ext4

dbus_data_fs
metrics_dir=$TT_DIR/metrics
mkdir -p "$metrics_dir"
printf '[Schedule]\nBootDelay=1w\nFreedSpaceThreshold=0\n[Metrics]\nMetricsFile=%s\n' \
	"$metrics_dir/thintrim.prom" >"$TT_CONFIG"
victim=$TT_DIR/precious
printf 'precious data\n' >"$victim"
chmod 600 "$victim"
ln -s "$victim" "$metrics_dir/thintrim.prom.tmp"

umask 077 # as the unit sets it
daemon_start --mountinfo "$TT_MOUNTINFO"
monitor_start
job=$(trim_job "$LOOPFS_MNT") || loopfs_die "Trim failed"
assert_true "a trim finishes" wait_job "$job"
assert_true "the metrics file is written" wait_until 5 grep -q thintrim_last_trimmed_bytes "$metrics_dir/thintrim.prom"
assert_eq "the symlink's target keeps its content" "precious data" "$(cat "$victim")"
assert_eq "and its mode" "600" "$(stat -c %a "$victim")"
assert_eq "the metrics file is world-readable (0644)" "644" "$(stat -c %a "$metrics_dir/thintrim.prom")"
assert_true "the metrics file is a regular file, not a link" test -f "$metrics_dir/thintrim.prom" -a ! -L "$metrics_dir/thintrim.prom"
assert_eq "no temporary file is left" "thintrim.prom" "$(ls -A "$metrics_dir")"
assert_eq "the daemon still answers" "idle" "$(mprop State)"
daemon_stop
assert_eq "and stops cleanly" 0 "$?"

loopfs_finish
