# stranded-space-lib.sh - the measurement of issue 19's stranded-space
# benchmark, shared by the loop-image run (tests/bench/stranded-space.sh, on
# the host) and the guest run (tests/vm/scenarios/stranded-space.sh, started
# by tests/bench/stranded-space-vm.sh).  Sourced; plain bash, fio and
# python3, no other test library.
# shellcheck shell=bash
#
#   stranded_check_params       BENCH_* read into STRANDED_* and checked
#                               (exit 2 with the offending value)
#   stranded_thintrim_config CONFIG MOUNT
#                               thintrimd's configuration for a run of CONFIG
#                               (old or new) managing MOUNT alone
#   stranded_used_bytes MOUNT   blocks in use (size - free), as df counts them
#   stranded_workload LOG       one run: samples to LOG.samples, fio's report to
#                               LOG.fio.json; returns fio's failure
#   stranded_row FS CONFIG LOG TRIMS
#                               the run's result row (stdout)
#   stranded_table RESULTS      the table of every row, per filesystem
#
# The caller sets STRANDED_FG (fio's mount point; fio.dat in it written in
# full already) and STRANDED_BG (the filesystem under test), on the same thin
# disk, and defines what differs between a loop image and a qcow2 seen from
# the guest:
#
#   stranded_fill FILE MIB      write MIB MiB of incompressible data to FILE
#   stranded_alloc              print the thin disk's allocated bytes
#
# A sample (LOG.samples): "seconds allocated used_fg used_bg" (tabs), the
# seconds since the run's start (to the ms), taken every STRANDED_SAMPLE_S on
# a fixed grid.  A row: "fs config GiB-min worst-GiB p99-ms writes trims".

stranded_check_params() {
	STRANDED_MINUTES=${BENCH_MINUTES:-30}
	STRANDED_STEP_S=${BENCH_STEP_S:-120}
	STRANDED_STEP_MIB=${BENCH_STEP_MIB:-256}
	STRANDED_SAMPLE_S=${BENCH_SAMPLE_S:-10}
	read -r -a STRANDED_FSTYPES <<<"${BENCH_FS:-ext4 xfs}"
	read -r -a STRANDED_CONFIGS <<<"${BENCH_CONFIGS:-none discard old new}"
	local n c
	for n in "$STRANDED_MINUTES" "$STRANDED_STEP_S" "$STRANDED_STEP_MIB" "$STRANDED_SAMPLE_S"; do
		if [[ ! $n =~ ^[1-9][0-9]*$ ]]; then
			echo "stranded-space: BENCH_MINUTES, BENCH_STEP_S, BENCH_STEP_MIB and BENCH_SAMPLE_S take whole numbers > 0, not '$n'" >&2
			exit 2
		fi
	done
	for c in "${STRANDED_CONFIGS[@]}"; do
		if [[ ! $c =~ ^(none|discard|old|new)$ ]]; then
			echo "stranded-space: BENCH_CONFIGS: unknown config '$c' (none discard old new)" >&2
			exit 2
		fi
	done
	for c in "${STRANDED_FSTYPES[@]}"; do
		if [[ ! $c =~ ^[a-z0-9]+$ ]]; then
			echo "stranded-space: BENCH_FS: '$c' is not a filesystem type" >&2
			exit 2
		fi
	done
}

# The version 1.1 freshness settings written out (old), or the built-in
# defaults plus BENCH_NEW_CONFIG's "Key=Value" lines (new).
stranded_thintrim_config() {
	printf '[Filesystems]\nInclude=%s\n[Schedule]\n' "$2"
	case $1 in
	old) printf 'FreedSpaceThreshold=8G\nEarlyTrimSpacing=1d\nCheckInterval=15min\n' ;;
	new) [[ -z ${BENCH_NEW_CONFIG:-} ]] || printf '%s\n' "$BENCH_NEW_CONFIG" ;;
	esac
}

stranded_used_bytes() {
	local blocks free size
	read -r blocks free size < <(stat -f -c '%b %f %S' -- "$1")
	echo $(((blocks - free) * size))
}

# _stranded_sampler OUT: on a fixed grid (a slow sample does not shift the
# next ones), so the integral's steps stay STRANDED_SAMPLE_S long.
_stranded_sampler() {
	local start=${EPOCHREALTIME/./} k=0 now
	while :; do
		now=${EPOCHREALTIME/./}
		printf '%s\t%s\t%s\t%s\n' "$(((now - start) / 1000))" "$(stranded_alloc)" \
			"$(stranded_used_bytes "$STRANDED_FG")" "$(stranded_used_bytes "$STRANDED_BG")" >>"$1"
		k=$((k + 1))
		now=${EPOCHREALTIME/./}
		local wait_us=$((start + k * STRANDED_SAMPLE_S * 1000000 - now))
		((wait_us <= 0)) || sleep "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
	done
}

# stranded_workload LOG: fio's 4k random writes at queue depth 1 on
# STRANDED_FG for STRANDED_MINUTES; meanwhile STRANDED_STEP_MIB MiB written
# to STRANDED_BG every STRANDED_STEP_S s and the previous step's file deleted
# (log rotation, build caches).  The last step's file stays.
stranded_workload() {
	local log=$1 sampler fio_pid step steps due rc=0
	: >"$log.samples"
	_stranded_sampler "$log.samples" &
	sampler=$!
	fio --name=fg --filename="$STRANDED_FG/fio.dat" --size=512M --rw=randwrite --bs=4k --iodepth=1 \
		--direct=1 --ioengine=psync --time_based --runtime=$((STRANDED_MINUTES * 60)) \
		--output-format=json --output="$log.fio.json" >"$log.fio.err" 2>&1 &
	fio_pid=$!
	steps=$((STRANDED_MINUTES * 60 / STRANDED_STEP_S))
	for ((step = 0; step < steps; step++)); do
		due=$((SECONDS + STRANDED_STEP_S))
		stranded_fill "$STRANDED_BG/step-$step" "$STRANDED_STEP_MIB"
		rm -f -- "$STRANDED_BG/step-$((step - 1))"
		sync
		((SECONDS >= due)) || sleep $((due - SECONDS))
	done
	wait "$fio_pid" || rc=$?
	kill "$sampler"
	wait "$sampler" 2>/dev/null || true
	if ((rc != 0)); then
		echo "stranded-space: fio failed (exit $rc): $(tail -3 "$log.fio.err")" >&2
		return "$rc"
	fi
}

# stranded_row FS CONFIG LOG TRIMS: the stranded space of a sample is its
# allocation minus both filesystems' used blocks, less the same at the run's
# start (metadata, fio's file), never below 0; GiB-minutes integrate it over
# the samples' real intervals (the last one counts STRANDED_SAMPLE_S).
stranded_row() {
	python3 - "$1" "$2" "$3.samples" "$3.fio.json" "$STRANDED_SAMPLE_S" "$4" <<-'PY'
		import json, sys
		fs, cfg, samples, fio, step, trims = sys.argv[1:]
		rows = [tuple(int(x) for x in l.split("\t")) for l in open(samples) if l.strip()]
		offset = rows[0][1] - rows[0][2] - rows[0][3]
		stranded = [max(0, a - u1 - u2 - offset) for _, a, u1, u2 in rows]
		times = [r[0] / 1000 for r in rows] + [rows[-1][0] / 1000 + int(step)]
		gib = 1 << 30
		gib_min = sum(s * (times[i + 1] - times[i]) for i, s in enumerate(stranded)) / 60 / gib
		job = json.load(open(fio))["jobs"][0]["write"]
		p99 = job["clat_ns"]["percentile"]["99.000000"] / 1e6
		print(f"{fs}\t{cfg}\t{gib_min:.3f}\t{max(stranded) / gib:.3f}\t"
		      f"{p99:.3f}\t{job['total_ios']}\t{trims}")
		# The shape, for whoever tunes a trigger: MiB stranded at each sample.
		print(f"# {fs} {cfg} stranded MiB per sample:",
		      " ".join(str(s >> 20) for s in stranded), file=sys.stderr)
	PY
}

stranded_table() {
	python3 - "$1" <<-'PY'
		import sys
		rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
		names = {"none": "no trim (fstrim.timer)", "discard": "-o discard",
		         "old": "thintrim 1.1 settings", "new": "thintrim defaults"}
		print(f"{'fs':<6}{'config':<24}{'GiB-min':>9}{'% none':>8}{'worst GiB':>10}{'p99 ms':>8}"
		      f"{'p99 x':>7}{'writes':>9}{'trims':>6}")
		for fs in dict.fromkeys(r[0] for r in rows):
		    mine = {r[1]: r for r in rows if r[0] == fs}
		    none = mine.get("none")
		    for cfg, r in mine.items():
		        share = f"{100 * float(r[2]) / float(none[2]):.0f}" if none and float(none[2]) else "-"
		        ratio = f"{float(r[4]) / float(none[4]):.2f}" if none and float(none[4]) else "-"
		        print(f"{fs:<6}{names[cfg]:<24}{float(r[2]):>9.2f}{share:>8}{float(r[3]):>10.2f}"
		              f"{float(r[4]):>8.2f}{ratio:>7}{r[5]:>9}{r[6]:>6}")
	PY
}
