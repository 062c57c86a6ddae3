#!/bin/bash
# pacing-latency.sh - benchmark of issue 11: foreground write latency while
# another filesystem on the same disk is trimmed.  Prints figures and whether
# the target is met; not in CI.
#
#   THINTRIM=... THINTRIMD=... TT_POLICY=... tests/bench/pacing-latency.sh
#   meson test -C build --benchmark pacing-latency -v        (as root)
#
# One sparse loop image with a GPT: p1 (1 GiB ext4) takes fio's 4k random
# writes at queue depth 1 (O_DIRECT, psync); p2 (the rest, ext4) has
# BENCH_MIB (2048) MiB written and deleted, then is trimmed: not at all, by
# `fstrim`, by thintrimd (private bus) with Pacing=fixed and with
# Pacing=auto.  Each mode runs BENCH_ROUNDS (2) times, interleaved.  The
# latencies counted are those of the writes completed while the trim ran
# (fio's per-I/O log; 8 s of fio alone for "no trim"); a row shows the median
# over the rounds of each percentile, and the ratios to the no-trim row.
# Target: thintrim auto's p99 ratio at most half of fstrim's, and its trim
# completes (exit 1 when not).  The measurement and the table are
# pacing-latency-lib.sh, shared with the guest run (pacing-latency-vm.sh).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
LOOPFS_NAME=pacing-latency
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"
# shellcheck source=tests/dbus/lib.sh
. "$here/../dbus/lib.sh"
# shellcheck source=tests/bench/pacing-latency-lib.sh
. "$here/pacing-latency-lib.sh"

MIB=${BENCH_MIB:-2048}
ROUNDS=${BENCH_ROUNDS:-2}
IMAGE=${BENCH_IMAGE:-8G}
[[ -x ${THINTRIM:-} ]] || loopfs_die "THINTRIM (the built thintrim) is not set"
loopfs_require_root_loop
loopfs_require_mkfs ext4
loopfs_require_cmd fio fstrim sfdisk partx python3
dbus_require
loopfs_setup thintrim-pacing-latency
dbus_setup

loopfs_image disk "$IMAGE" >/dev/null
loopfs_attach "$LOOPFS_IMG" -P >/dev/null
dev=$LOOPFS_DEV
loopfs_partition "$dev" 1GiB
loopfs_mkfs ext4 "${dev}p1" tt-fg
loopfs_mkfs ext4 "${dev}p2" tt-bg
fg=$(loopfs_mount "${dev}p1" fg nodiscard,noinit_itable ext4)
bg=$(loopfs_mount "${dev}p2" bg nodiscard,noinit_itable ext4)
fstrim "$bg" >/dev/null # the first rounds start from the same trimmed state
results=$LOOPFS_RUN/results.tsv
: >"$results"

daemon_with_pacing() {
	[[ -z $DAEMON_PID ]] || daemon_stop
	# Slots are days away (RandomizedDelay=0: Monday 00:00 UTC); only our
	# Trim calls trim.
	cat >"$TT_CONFIG" <<-EOF
		[Schedule]
		BootDelay=0
		RandomizedDelay=0
		FreedSpaceThreshold=0
		[Trim]
		Pacing=$1
		[Filesystems]
		Include=$LOOPFS_RUN/mnt/*
	EOF
	daemon_start
}

pacing_fill() { loopfs_write_mib "$1" "$2"; }
pacing_state() { mprop PacingState; }
pacing_thintrim() { "$THINTRIM" trim "$1"; }
PACING_FG=$fg PACING_BG=$bg PACING_MIB=$MIB PACING_DIR=$LOOPFS_RUN PACING_RESULTS=$results

echo "# loop image $IMAGE (p1 1 GiB fio, p2 trimmed after $MIB MiB deleted), $ROUNDS rounds; $(nproc) CPUs; $(uname -r)"
echo "# $(fio --version); $(fstrim --version 2>&1 | head -n1); thintrim: $THINTRIM"
for round in $(seq 1 "$ROUNDS"); do
	pacing_measure none "$round"
	pacing_measure fstrim "$round"
	daemon_with_pacing fixed
	pacing_measure fixed "$round"
	daemon_with_pacing auto
	pacing_measure auto "$round"
	daemon_stop
done

echo
pacing_table "$results"
