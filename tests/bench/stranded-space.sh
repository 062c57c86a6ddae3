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

# shellcheck source=tests/bench/stranded-space-lib.sh
. "$here/stranded-space-lib.sh"

stranded_check_params
IMAGE=${BENCH_IMAGE:-8G}
fstypes=("${STRANDED_FSTYPES[@]}")
configs=("${STRANDED_CONFIGS[@]}")
[[ -x ${THINTRIM:-} ]] || loopfs_die "THINTRIM (the built thintrim) is not set"
loopfs_require_root_loop
loopfs_require_mkfs "${fstypes[@]}" ext4
loopfs_require_cmd fio sfdisk partx python3 fstrim
dbus_require
loopfs_setup thintrim-stranded-space
dbus_setup
results=$LOOPFS_RUN/results.tsv
: >"$results"

stranded_fill() { loopfs_write_mib "$@"; }
stranded_alloc() { loopfs_alloc_bytes "$STRANDED_IMAGE"; }

run_one() { # FSTYPE CONFIG
	local fs=$1 cfg=$2 name=$1-$2 dev img opts log trims=- before
	img=$(loopfs_image "$name" "$IMAGE")
	STRANDED_IMAGE=$img
	loopfs_attach "$img" -P >/dev/null
	dev=$LOOPFS_DEV
	loopfs_partition "$dev" 1GiB
	loopfs_mkfs ext4 "${dev}p1" tt-fg
	loopfs_mkfs "$fs" "${dev}p2" tt-bg
	STRANDED_FG=$(loopfs_mount "${dev}p1" "fg-$name" "$(loopfs_default_opts ext4)" ext4)
	opts=$(loopfs_default_opts "$fs")
	[[ $cfg != discard ]] || opts=${opts//nodiscard/discard}
	STRANDED_BG=$(loopfs_mount "${dev}p2" "bg-$name" "$opts" "$fs")
	# fio's file written in full first: its writes then allocate nothing.
	loopfs_write_mib "$STRANDED_FG/fio.dat" 512
	fstrim "$STRANDED_BG" >/dev/null
	if [[ $cfg == old || $cfg == new ]]; then
		stranded_thintrim_config "$cfg" "$STRANDED_BG" >"$TT_CONFIG"
		daemon_start
		"$THINTRIM" trim "$STRANDED_BG" >/dev/null
		before=$(prop "$(fs_path "$STRANDED_BG")" "$TT_FS" TrimCount) # the baseline trim
	fi
	sync
	log=$LOOPFS_RUN/$name
	stranded_workload "$log" || loopfs_die "the $name run failed"
	if [[ -n $DAEMON_PID ]]; then
		trims=$(($(prop "$(fs_path "$STRANDED_BG")" "$TT_FS" TrimCount) - before))
		# When each trim was due and how long it took: the reaction time.
		grep -E "is due|trimmed" "$TT_LOG" | sed 's/^/#   /' || true
		daemon_stop
	fi
	stranded_row "$fs" "$cfg" "$log" "$trims" >>"$results"
	printf '# %s\n' "$(tail -n1 "$results")"
	umount -- "$STRANDED_FG"
	loopfs_remove_fs "$STRANDED_BG" "$dev" "$img"
}

echo "# loop image $IMAGE: p1 1 GiB ext4 fio 4k randwrite qd1, p2 the type under test with" \
	"$STRANDED_STEP_MIB MiB written and the previous step deleted every $STRANDED_STEP_S s" \
	"for $STRANDED_MINUTES min; sampled every $STRANDED_SAMPLE_S s; $(nproc) CPUs; $(uname -r);" \
	"$(fio --version)"
[[ -z ${BENCH_NEW_CONFIG:-} ]] || echo "# new = defaults + ${BENCH_NEW_CONFIG//$'\n'/ }"
for fs in "${fstypes[@]}"; do
	for cfg in "${configs[@]}"; do
		run_one "$fs" "$cfg"
	done
done

echo
stranded_table "$results"
