#!/bin/bash
# stranded-space.sh - issue 19's benchmark: how much space sits stranded
# (freed in the guest, still allocated on the host) and for how long, and what
# getting it back costs foreground writes.  Prints a table; not in CI.
#
#   THINTRIM=... THINTRIMD=... TT_POLICY=... tests/bench/stranded-space.sh   (as root)
#   meson test -C build --benchmark stranded-space -v
#
# For each filesystem type (BENCH_FS, default "ext4 xfs") and each config
# (BENCH_CONFIGS, default "none discard old new"), a fresh sparse loop image
# (BENCH_IMAGE, 8G; the README's stand-in for a thin qcow2) gets a GPT: p1
# (1 GiB ext4) takes fio's 4k random writes at queue depth 1 (O_DIRECT, psync)
# for the whole run; p2 (the rest, the type under test) has BENCH_STEP_MIB
# (256) MiB written every BENCH_STEP_S (120) s and the previous step's file
# deleted (log rotation, build caches), for BENCH_MINUTES (30).  Every
# BENCH_SAMPLE_S (10) s the image's allocation minus both filesystems' used
# blocks is recorded, less the same at the start (metadata, the fio file):
# the stranded space.  The configs:
#   none      nothing trims: what fstrim.timer (weekly) does within the run
#   discard   p2 mounted -o discard: every freed extent discarded at once
#   old       thintrimd with the version 1.1 freshness settings, written out
#             (FreedSpaceThreshold=8G, EarlyTrimSpacing=1d, CheckInterval=15min)
#   new       thintrimd with its built-in defaults, plus BENCH_NEW_CONFIG
#             (extra "Key=Value" lines for [Schedule], to try candidates)
# The daemons run on a private bus (tests/dbus/lib.sh) and trim p2 once at
# the start, as a daemon that has run before would have: the baseline of
# FreedSinceLastTrim.  A short run (BENCH_MINUTES=5 BENCH_STEP_S=30
# BENCH_STEP_MIB=64) shows the shape in minutes; its p99 is noisy on a shared
# machine.  The table: stranded GiB-minutes (the integral) and its share of
# the no-trim run's, the worst moment, fio's p99 and its ratio to the no-trim
# run's, and how many trims thintrimd ran.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
LOOPFS_NAME=stranded-space
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"
# shellcheck source=tests/dbus/lib.sh
. "$here/../dbus/lib.sh"

MINUTES=${BENCH_MINUTES:-30}
STEP_S=${BENCH_STEP_S:-120}
STEP_MIB=${BENCH_STEP_MIB:-256}
SAMPLE_S=${BENCH_SAMPLE_S:-10}
IMAGE=${BENCH_IMAGE:-8G}
read -r -a fstypes <<<"${BENCH_FS:-ext4 xfs}"
read -r -a configs <<<"${BENCH_CONFIGS:-none discard old new}"
for n in "$MINUTES" "$STEP_S" "$STEP_MIB" "$SAMPLE_S"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || loopfs_die "BENCH_MINUTES, BENCH_STEP_S, BENCH_STEP_MIB and BENCH_SAMPLE_S take whole numbers > 0, not '$n'"
done
for c in "${configs[@]}"; do
	[[ $c =~ ^(none|discard|old|new)$ ]] || loopfs_die "BENCH_CONFIGS: unknown config '$c' (none discard old new)"
done
[[ -x ${THINTRIM:-} ]] || loopfs_die "THINTRIM (the built thintrim) is not set"
loopfs_require_root_loop
loopfs_require_mkfs "${fstypes[@]}" ext4
loopfs_require_cmd fio sfdisk partx python3 fstrim
dbus_require
loopfs_setup thintrim-stranded-space
dbus_setup
results=$LOOPFS_RUN/results.tsv
: >"$results"

used_bytes() { # MOUNT: blocks in use (size - free), as df counts them
	local blocks free size
	read -r blocks free size < <(stat -f -c '%b %f %S' -- "$1")
	echo $(((blocks - free) * size))
}

# sample IMAGE FG BG OUT: every SAMPLE_S, "seconds allocated used_fg used_bg".
sample() {
	local start=$SECONDS
	while :; do
		printf '%s\t%s\t%s\t%s\n' $((SECONDS - start)) "$(loopfs_alloc_bytes "$1")" \
			"$(used_bytes "$2")" "$(used_bytes "$3")" >>"$4"
		sleep "$SAMPLE_S"
	done
}

thintrim_config() { # CONFIG BG: the daemon's configuration for the run
	printf '[Filesystems]\nInclude=%s\n[Schedule]\n' "$2"
	case $1 in
	old) printf 'FreedSpaceThreshold=8G\nEarlyTrimSpacing=1d\nCheckInterval=15min\n' ;;
	new) [[ -z ${BENCH_NEW_CONFIG:-} ]] || printf '%s\n' "$BENCH_NEW_CONFIG" ;;
	esac
}

run_one() { # FSTYPE CONFIG
	local fs=$1 cfg=$2 name=$1-$2 dev fg bg img opts log fio_pid sampler step steps trims=-
	img=$(loopfs_image "$name" "$IMAGE")
	loopfs_attach "$img" -P >/dev/null
	dev=$LOOPFS_DEV
	loopfs_partition "$dev" 1GiB
	loopfs_mkfs ext4 "${dev}p1" tt-fg
	loopfs_mkfs "$fs" "${dev}p2" tt-bg
	fg=$(loopfs_mount "${dev}p1" "fg-$name" "$(loopfs_default_opts ext4)" ext4)
	opts=$(loopfs_default_opts "$fs")
	[[ $cfg != discard ]] || opts=${opts//nodiscard/discard}
	bg=$(loopfs_mount "${dev}p2" "bg-$name" "$opts" "$fs")
	# fio's file written in full first: its writes then allocate nothing.
	loopfs_write_mib "$fg/fio.dat" 512
	fstrim "$bg" >/dev/null
	if [[ $cfg == old || $cfg == new ]]; then
		thintrim_config "$cfg" "$bg" >"$TT_CONFIG"
		daemon_start
		"$THINTRIM" trim "$bg" >/dev/null
	fi
	sync
	log=$LOOPFS_RUN/$name
	: >"$log.samples"
	sample "$img" "$fg" "$bg" "$log.samples" &
	sampler=$!
	fio --name=fg --filename="$fg/fio.dat" --size=512M --rw=randwrite --bs=4k --iodepth=1 \
		--direct=1 --ioengine=psync --time_based --runtime=$((MINUTES * 60)) \
		--output-format=json --output="$log.fio.json" >"$log.fio.err" 2>&1 &
	fio_pid=$!
	steps=$((MINUTES * 60 / STEP_S))
	for ((step = 0; step < steps; step++)); do
		local due=$((SECONDS + STEP_S))
		loopfs_write_mib "$bg/step-$step" "$STEP_MIB"
		rm -f -- "$bg/step-$((step - 1))"
		sync
		((SECONDS >= due)) || sleep $((due - SECONDS))
	done
	wait "$fio_pid" || loopfs_die "fio failed: $(tail -3 "$log.fio.err")"
	kill "$sampler"
	wait "$sampler" 2>/dev/null || true
	if [[ -n $DAEMON_PID ]]; then
		trims=$(($(prop "$(fs_path "$bg")" "$TT_FS" TrimCount) - 1)) # less the baseline trim
		daemon_stop
	fi
	python3 - "$fs" "$cfg" "$log.samples" "$log.fio.json" "$SAMPLE_S" "$trims" >>"$results" <<-'PY'
		import json, sys
		fs, cfg, samples, fio, step, trims = sys.argv[1:]
		rows = [tuple(int(x) for x in l.split("\t")) for l in open(samples) if l.strip()]
		offset = rows[0][1] - rows[0][2] - rows[0][3]
		stranded = [max(0, a - u1 - u2 - offset) for _, a, u1, u2 in rows]
		gib = 1 << 30
		job = json.load(open(fio))["jobs"][0]["write"]
		p99 = job["clat_ns"]["percentile"]["99.000000"] / 1e6
		print(f"{fs}\t{cfg}\t{sum(stranded) * int(step) / 60 / gib:.3f}\t{max(stranded) / gib:.3f}\t"
		      f"{p99:.3f}\t{job['total_ios']}\t{trims}")
	PY
	printf '# %s\n' "$(tail -n1 "$results")"
	umount -- "$fg"
	loopfs_remove_fs "$bg" "$dev" "$img"
}

echo "# loop image $IMAGE: p1 1 GiB ext4 fio 4k randwrite qd1, p2 the type under test with" \
	"$STEP_MIB MiB written and the previous step deleted every $STEP_S s for $MINUTES min;" \
	"sampled every $SAMPLE_S s; $(nproc) CPUs; $(uname -r); $(fio --version)"
[[ -z ${BENCH_NEW_CONFIG:-} ]] || echo "# new = defaults + ${BENCH_NEW_CONFIG//$'\n'/ }"
for fs in "${fstypes[@]}"; do
	for cfg in "${configs[@]}"; do
		run_one "$fs" "$cfg"
	done
done

echo
python3 - "$results" <<-'PY'
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
