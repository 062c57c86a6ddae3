#!/bin/bash
# mounts.sh - benchmark: thintrim at 500, 2,000 and 10,000 mounts next to
# `fstrim -a -n` on the same mount table, and thintrimd under mount churn.
# Prints figures and whether each target of issue 8 is met (exit 0 either
# way: figures, not a test).
#
#   tests/bench/mounts.sh                     (as root; THINTRIM, THINTRIMD,
#   meson test -C build --benchmark mounts -v  TT_POLICY set by meson)
#
# Runs in a private mount namespace: nothing of the mounts is seen outside
# and they all go when it ends. Two ext4 loop filesystems, then bind mounts of
# them up to BENCH_COUNTS (default "500 2000 10000") mounts in all, one in 20
# a tmpfs and one in 20 an overlay. At each count: wall time (best of 3) and
# peak RSS (/usr/bin/time) of fstrim -a -n, thintrim list, thintrim list --all
# (list reads locally: no daemon on the bus). Then at the largest count,
# thintrimd on a private bus: daemon CPU and RSS across BENCH_PAIRS (1000)
# bind mount + umount pairs of one filesystem (after 100 pairs to warm up),
# the time from mount(2) returning to the new filesystem's object answering
# GetFilesystem (worst of 5), and the daemon's context switches (wakeups)
# over BENCH_IDLE (30) idle seconds (one per CheckInterval: its timer).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
if [[ -z ${BENCH_PRIVATE_NS:-} ]]; then
	[[ $(id -u) -eq 0 ]] || { echo "mounts.sh: needs root (loop devices, mounts)" >&2; exit 77; }
	exec unshare --mount --propagation private env BENCH_PRIVATE_NS=1 "$0" "$@"
fi

LOOPFS_NAME=mounts-bench
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"
# shellcheck source=tests/dbus/lib.sh
. "$here/../dbus/lib.sh"

COUNTS=${BENCH_COUNTS:-500 2000 10000}
PAIRS=${BENCH_PAIRS:-1000}
IDLE=${BENCH_IDLE:-30}
PAUSE=${BENCH_PAUSE:-0.002}
[[ -x ${THINTRIM:-} ]] || loopfs_die "THINTRIM (the built thintrim) is not set"
loopfs_require_root_loop
loopfs_require_mkfs ext4
loopfs_require_cmd fstrim python3 /usr/bin/time
dbus_require
loopfs_setup thintrim-mounts
dbus_setup
MOUNTS_PY=$here/mounts.py

loopfs_new_fs ext4 fsa 256M
fsa=$LOOPFS_MNT
loopfs_new_fs ext4 fsb 256M
fsb=$LOOPFS_MNT
# Mounted later, to time its object's appearance.
loopfs_image fsc 256M >/dev/null
loopfs_attach "$LOOPFS_IMG" >/dev/null
devc=$LOOPFS_DEV
loopfs_mkfs ext4 "$devc" tt-fsc
mkdir -p "$LOOPFS_RUN/mnt/fsc"

# All the generated mounts live under one tmpfs: one lazy unmount ends them.
binds=$LOOPFS_RUN/binds
mkdir -p "$binds"
mount -t tmpfs -o size=64m bench-binds "$binds"
trap 'umount -l "$binds" 2>/dev/null; dbus_cleanup; loopfs_cleanup' EXIT

mounts_now() { wc -l </proc/self/mountinfo; }

# measure CMD...: best wall time of 3 runs (ms) and the largest peak RSS (KiB)
# into WALL_MS and RSS_KB.
measure() {
	local i t0 t1 best='' rss=0 r
	for i in 1 2 3; do
		t0=$(date +%s%N)
		/usr/bin/time -f %M -o "$LOOPFS_RUN/.rss" "$@" >/dev/null 2>&1 || true
		t1=$(date +%s%N)
		r=$(tail -n1 "$LOOPFS_RUN/.rss")
		((r > rss)) && rss=$r
		t1=$(((t1 - t0) / 1000000))
		if [[ -z $best ]] || ((t1 < best)); then best=$t1; fi
	done
	WALL_MS=$best
	RSS_KB=$rss
}

# verdict CONDITION: "met" or "MISSED" (counted in a file: callers run it in $(...)).
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; echo >>"$LOOPFS_RUN/.missed"; fi; }
: >"$LOOPFS_RUN/.missed"

printf '\n%-7s %-22s %9s %10s %8s %8s  %s\n' MOUNTS COMMAND WALL "PEAK RSS" "x TIME" "x RSS" TARGETS
made=0
for count in $COUNTS; do
	want=$((made + count - $(mounts_now)))
	if ((want > made)); then
		python3 "$MOUNTS_PY" grow "$binds" "$made" "$want" "$fsa" "$fsb"
		made=$want
	fi
	total=$(mounts_now)
	measure fstrim -a -n
	f_ms=$WALL_MS f_kb=$RSS_KB
	printf '%-7s %-22s %6s ms %6s KiB\n' "$total" "fstrim -a -n" "$f_ms" "$f_kb"
	for args in "list" "list --all"; do
		# shellcheck disable=SC2086 # two words
		DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent measure "$THINTRIM" $args
		tx=$(awk -v a="$WALL_MS" -v b="$f_ms" 'BEGIN { printf "%.2f", a / (b ? b : 1) }')
		rx=$(awk -v a="$RSS_KB" -v b="$f_kb" 'BEGIN { printf "%.2f", a / b }')
		targets=
		if [[ $args == list && $count -ge 2000 ]]; then
			targets="time <= 1.0x $(verdict "$tx <= 1.0"), RSS <= 2x $(verdict "$rx <= 2.0")"
		fi
		printf '%-7s %-22s %6s ms %6s KiB %7sx %7sx  %s\n' "" "thintrim $args" "$WALL_MS" "$RSS_KB" "$tx" "$rx" "$targets"
	done
done

# --- thintrimd under churn, at the largest count -------------------------------
cat >"$TT_CONFIG" <<CONF
[Schedule]
FreedSpaceThreshold=0
[Filesystems]
Include=$LOOPFS_RUN/mnt/*
CONF
daemon_start
pid=$DAEMON_PID
quiet call Suspend # no trims while measuring
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { n += $2 } END { print n }'; }
settle() { sleep 1; }
hz=$(getconf CLK_TCK)

python3 "$MOUNTS_PY" churn "$binds" "$fsa" 100 "$PAUSE"
settle
cpu0=$(cpu_ticks "$pid") rss0=$(rss_kb "$pid")
t0=$(date +%s%N)
python3 "$MOUNTS_PY" churn "$binds" "$fsa" "$PAIRS" "$PAUSE"
t1=$(date +%s%N)
settle
cpu1=$(cpu_ticks "$pid") rss1=$(rss_kb "$pid")
events=$((PAIRS * 2))
cpu_ms=$(((cpu1 - cpu0) * 1000 / hz))
per_event=$(awk -v c="$cpu_ms" -v e="$events" 'BEGIN { printf "%.3f", c / e }')
rss_diff=$((rss1 - rss0))
echo
echo "thintrimd at $(mounts_now) mounts, $PAIRS bind mount + umount pairs in $(((t1 - t0) / 1000000)) ms (pause ${PAUSE}s after each call):"
echo "  daemon CPU: $cpu_ms ms, $per_event ms per mount event; target < 0.5 ms: $(verdict "$per_event < 0.5")"
echo "  daemon RSS: $rss0 KiB before, $rss1 KiB after ($rss_diff KiB); target: grows by at most 1 MiB: $(verdict "$rss_diff <= 1024")"

worst=0
for i in 1 2 3 4 5; do
	mount "$devc" "$LOOPFS_RUN/mnt/fsc"
	t0=$(date +%s%N)
	wait_until 10 fs_path "$LOOPFS_RUN/mnt/fsc" >/dev/null || true
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	((ms > worst)) && worst=$ms
	umount "$LOOPFS_RUN/mnt/fsc"
	wait_until 10 sh -c "! busctl call $TT_NAME $TT_PATH $TT_MANAGER GetFilesystem s $LOOPFS_RUN/mnt/fsc" >/dev/null 2>&1 || true
done
echo "  new mount to its D-Bus object: worst of 5 $worst ms (polled every 0.1 s); target within 1 s: $(verdict "$worst <= 1000")"

settle
w0=$(switches "$pid")
sleep "$IDLE"
w1=$(switches "$pid")
# The one timer an idle daemon keeps: CheckInterval (10 s) reads
# /proc/diskstats on the loop thread; the scanning thread sleeps on.
most=$((IDLE / 10))
echo "  idle: $((w1 - w0)) wakeups (context switches of all its threads) in $IDLE s; target: one per CheckInterval (10 s), at most $most: $(verdict "$((w1 - w0)) <= $most")"
daemon_stop || true

echo
missed=$(wc -l <"$LOOPFS_RUN/.missed")
if ((missed == 0)); then echo "all targets met"; else echo "$missed target(s) missed"; fi
