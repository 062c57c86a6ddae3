# pacing-latency-lib.sh - the measurement of issue 11's foreground-latency
# benchmark, shared by the loop-disk run (tests/bench/pacing-latency.sh, on
# the host) and the guest run (tests/vm/scenarios/pacing-latency.sh, started
# by tests/bench/pacing-latency-vm.sh).  Sourced; plain bash and python3, no
# other test library.
# shellcheck shell=bash
#
#   pacing_measure MODE ROUND   one run (MODE none, fstrim, fixed or auto): fill
#                               and delete on $PACING_BG, fio on $PACING_FG, the
#                               trim; appends a row to $PACING_RESULTS
#   pacing_table RESULTS        the table of the medians, the ratios to the
#                               no-trim row and whether the target is met
#
# The caller sets PACING_FG, PACING_BG (mount points on the same disk),
# PACING_MIB (written and deleted before each trim), PACING_DIR (fio's logs),
# PACING_RESULTS, optionally PACING_IDLE_S (fio alone for the "none" run,
# default 8) and PACING_POLL_S (PacingState sampling, default 0.2), and
# defines what differs between a host and a guest:
#
#   pacing_fill FILE MIB        write MIB MiB of incompressible data to FILE
#   pacing_state                print the Manager's PacingState
#   pacing_thintrim MOUNT       thintrim trim MOUNT (the daemon's Pacing= is
#                               already what the run's MODE says)
#   pacing_mark NAME            optional: called with MODE-ROUND-deleted before
#                               fio starts and MODE-ROUND-trimmed after it stops
#
# A row: "MODE ROUND writes p50 p90 p99 p99.9 seconds rc states" (ms, tabs).
# The latencies counted are those of the writes completed while the trim ran
# (fio's per-I/O log, filtered on the trim's start and end), so fio's idle
# warm-up and the time after the trim do not dilute them.  After a "none" run
# an untimed fstrim retires its deletion, so every timed trim faces one.

pacing_measure() {
	local mode=$1 round=$2 log=$PACING_DIR/lat-$1-$2 t0 t1 rc=0 fio_pid poll_pid=
	if [[ ! -e $PACING_FG/fio.dat ]]; then
		# Written once in full before any run: fio's first writes would
		# otherwise also allocate (ext4's unwritten extents, a thin disk's
		# clusters), which only the first runs would pay for.
		pacing_fill "$PACING_FG/fio.dat" 512
		sync
	fi
	pacing_fill "$PACING_BG/fill" "$PACING_MIB"
	rm -f -- "$PACING_BG/fill"
	sync
	sleep 6 # ext4 frees the blocks at its next journal commit
	! declare -F pacing_mark >/dev/null || pacing_mark "$mode-$round-deleted"
	# fio's report goes to a file: on SIGINT it prints "fio: terminating on
	# signal" to stdout first.
	fio --name=fg --filename="$PACING_FG/fio.dat" --size=512M --rw=randwrite --bs=4k --iodepth=1 \
		--direct=1 --ioengine=psync --time_based --runtime=3600 --write_lat_log="$log" \
		--log_avg_msec=0 --log_unix_epoch=1 --output="$log.out" >"$log.err" 2>&1 &
	fio_pid=$!
	sleep 3 # past the layout of fio's file
	: >"$log.states"
	if [[ $mode == auto || $mode == fixed ]]; then
		while sleep "${PACING_POLL_S:-0.2}"; do pacing_state >>"$log.states" 2>/dev/null || true; done &
		poll_pid=$!
	fi
	t0=$(date +%s%3N)
	case $mode in
	none) sleep "${PACING_IDLE_S:-8}" ;;
	fstrim) fstrim -v "$PACING_BG" >"$log.trim" 2>&1 || rc=$? ;;
	fixed | auto) pacing_thintrim "$PACING_BG" >"$log.trim" 2>&1 || rc=$? ;;
	*) echo "pacing_measure: unknown mode $mode" >&2; return 2 ;;
	esac
	t1=$(date +%s%3N)
	[[ -z $poll_pid ]] || { kill "$poll_pid"; wait "$poll_pid" 2>/dev/null || true; }
	kill -INT "$fio_pid"
	wait "$fio_pid" || true
	! declare -F pacing_mark >/dev/null || pacing_mark "$mode-$round-trimmed"
	# Untimed: the next run's trim then finds only its own deletion.
	[[ $mode != none ]] || fstrim "$PACING_BG" >/dev/null
	python3 - "$log"_clat.1.log "$t0" "$t1" "$mode" "$round" "$rc" "$log.states" >>"$PACING_RESULTS" <<-'PY'
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
	printf '# %s round %s: %s\n' "$mode" "$round" "$(tail -n1 "$PACING_RESULTS")"
}

# pacing_table RESULTS [IDLE_S]: exit 0 when the target is met, 1 when not.
pacing_table() {
	python3 - "$1" "${2:-${PACING_IDLE_S:-8}}" <<-'PY'
		import statistics, sys
		rows = {}
		for line in open(sys.argv[1]):
		    mode, rnd, n, p50, p90, p99, p999, secs, rc, waits = line.rstrip("\n").split("\t")
		    rows.setdefault(mode, []).append((int(n), float(p50), float(p90), float(p99), float(p999),
		                                      float(secs), int(rc), waits))
		med = lambda mode, i: statistics.median(r[i] for r in rows[mode])
		names = {"none": f"no trim ({sys.argv[2]} s)", "fstrim": "fstrim",
		         "fixed": "thintrim Pacing=fixed", "auto": "thintrim Pacing=auto"}
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
		sys.exit(0 if met else 1)
	PY
}
