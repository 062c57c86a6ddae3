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
# completes.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
LOOPFS_NAME=pacing-latency
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"
# shellcheck source=tests/dbus/lib.sh
. "$here/../dbus/lib.sh"

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
printf 'label: gpt\n,1GiB\n,\n' | sfdisk -q -- "$dev" >/dev/null 2>&1 || loopfs_die "sfdisk $dev failed"
loopfs_wait_dev "${dev}p2" 10 || partx -a -- "$dev" || loopfs_die "partx -a $dev failed"
loopfs_wait_dev "${dev}p2" || loopfs_die "${dev}p2 did not appear"
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

# measure MODE ROUND: fill and delete on p2, fio on p1, the trim; appends
# "MODE ROUND n p50 p90 p99 p99.9 seconds rc states" to $results.
measure() {
	local mode=$1 round=$2 log=$LOOPFS_RUN/lat-$1-$2 t0 t1 rc=0 fio_pid poll_pid
	loopfs_write_mib "$bg/fill" "$MIB"
	loopfs_delete "$bg/fill"
	sleep 6 # ext4 frees the blocks at its next journal commit
	fio --name=fg --filename="$fg/fio.dat" --size=512M --rw=randwrite --bs=4k --iodepth=1 \
		--direct=1 --ioengine=psync --time_based --runtime=3600 --write_lat_log="$log" \
		--log_avg_msec=0 --log_unix_epoch=1 >"$log.out" 2>&1 &
	fio_pid=$!
	sleep 3 # past the layout of fio's file
	: >"$log.states"
	if [[ $mode == auto || $mode == fixed ]]; then
		while sleep 0.2; do mprop PacingState >>"$log.states" 2>/dev/null || true; done &
		poll_pid=$!
	fi
	t0=$(date +%s%3N)
	case $mode in
	none) sleep 8 ;;
	fstrim) fstrim "$bg" >"$log.trim" 2>&1 || rc=$? ;;
	fixed | auto) "$THINTRIM" trim "$bg" >"$log.trim" 2>&1 || rc=$? ;;
	esac
	t1=$(date +%s%3N)
	[[ -z ${poll_pid:-} ]] || { kill "$poll_pid"; wait "$poll_pid" 2>/dev/null || true; }
	kill -INT "$fio_pid"
	wait "$fio_pid" || true
	python3 - "$log"_clat.1.log "$t0" "$t1" "$mode" "$round" "$rc" "$log.states" >>"$results" <<-'PY'
		import collections, sys
		path, t0, t1, mode, rnd, rc, states = sys.argv[1:]
		t0, t1 = int(t0), int(t1)
		lat = sorted(int(f[1]) for f in (l.split(",") for l in open(path)) if t0 <= int(f[0]) <= t1)
		q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6 if lat else float("nan")
		seen = collections.Counter(s.strip() for s in open(states) if s.strip())
		waits = "; ".join(f"{n}x {s}" for s, n in seen.most_common(3)) or "-"
		print(f"{mode}\t{rnd}\t{len(lat)}\t{q(.5):.3f}\t{q(.9):.3f}\t{q(.99):.3f}\t{q(.999):.3f}\t"
		      f"{(t1 - t0) / 1000:.1f}\t{rc}\t{waits}")
	PY
	printf '# %s round %s: %s\n' "$mode" "$round" "$(tail -n1 "$results")"
}

echo "# loop image $IMAGE (p1 1 GiB fio, p2 trimmed after $MIB MiB deleted), $ROUNDS rounds; $(nproc) CPUs; $(uname -r)"
echo "# $(fio --version); $(fstrim --version 2>&1 | head -n1); thintrim: $THINTRIM"
for round in $(seq 1 "$ROUNDS"); do
	measure none "$round"
	measure fstrim "$round"
	daemon_with_pacing fixed
	measure fixed "$round"
	daemon_with_pacing auto
	measure auto "$round"
	daemon_stop
done

echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, rnd, n, p50, p90, p99, p999, secs, rc, waits = line.rstrip("\n").split("\t")
    rows.setdefault(mode, []).append((int(n), float(p50), float(p90), float(p99), float(p999),
                                      float(secs), int(rc), waits))
med = lambda mode, i: statistics.median(r[i] for r in rows[mode])
names = {"none": "no trim (8 s)", "fstrim": "fstrim", "fixed": "thintrim Pacing=fixed",
         "auto": "thintrim Pacing=auto"}
print(f"{'run':<24}{'writes':>8}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'p50 x':>8}{'p99 x':>8}"
      f"{'trim s':>8}  result")
for mode in ("none", "fstrim", "fixed", "auto"):
    fails = [r[6] for r in rows[mode] if r[6] != 0]
    print(f"{names[mode]:<24}{med(mode, 0):>8.0f}{med(mode, 1):>9.2f}{med(mode, 3):>9.2f}"
          f"{med(mode, 4):>10.2f}{med(mode, 1) / med('none', 1):>8.2f}"
          f"{med(mode, 3) / med('none', 3):>8.2f}{med(mode, 5) if mode != 'none' else '':>8}"
          f"  {'exit %d' % fails[0] if fails else 'ok'}")
print("\nPacingState seen during the auto runs:", " | ".join(r[7] for r in rows["auto"]))
fstrim_ratio = med("fstrim", 3) / med("none", 3)
auto_ratio = med("auto", 3) / med("none", 3)
met = auto_ratio <= fstrim_ratio / 2 and all(r[6] == 0 for r in rows["auto"])
print(f"target: auto's p99 ratio {auto_ratio:.2f} <= half of fstrim's {fstrim_ratio:.2f}, "
      f"trim completed: {'met' if met else 'NOT MET'}")
PY
