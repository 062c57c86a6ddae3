#!/bin/bash
# trim-vs-fstrim.sh - benchmark: thintrim next to util-linux fstrim on
# identical loop-backed filesystems.  Prints figures, no pass/fail.
#
#   tests/bench/trim-vs-fstrim.sh [PATH-TO-thintrim]      (as root)
#   meson test -C build --benchmark trim-vs-fstrim -v
#
# For each of ext4, xfs and btrfs, three rows, each on a fresh sparse image
# of BENCH_IMAGE (default 2G) with BENCH_MIB (default 500) MiB of the same
# data written and deleted:
#   fstrim -v MOUNT
#   thintrim trim --local MOUNT                 (default chunking)
#   thintrim trim --local --rate RATE --chunk CHUNK MOUNT
#                        (BENCH_RATE, default 200M/s; BENCH_CHUNK, default
#                        256M: the pause comes between chunks, so a
#                        filesystem that is one chunk is not paced)
# Columns: wall time of the trim command, bytes the tool reported, the image
# file's allocated bytes before/after the trim, peak RSS (/usr/bin/time).
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
LOOPFS_NAME=trim-vs-fstrim
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"

THINTRIM=${1:-${THINTRIM:-}}
[[ -n $THINTRIM ]] || loopfs_die "usage: $0 PATH-TO-thintrim (or set THINTRIM)"
[[ -x $THINTRIM ]] || loopfs_die "$THINTRIM is not an executable"
THINTRIM=$(realpath -- "$THINTRIM")

IMAGE=${BENCH_IMAGE:-2G}
MIB=${BENCH_MIB:-500}
RATE=${BENCH_RATE:-200M/s}
CHUNK=${BENCH_CHUNK:-256M}
FSTYPES=${BENCH_FSTYPES:-ext4 xfs btrfs}

loopfs_require_root_loop
# shellcheck disable=SC2086 # a list of words
loopfs_require_mkfs $FSTYPES
loopfs_require_cmd fstrim
TIME=
if [[ -x /usr/bin/time ]]; then
	TIME=/usr/bin/time
else
	loopfs_log "/usr/bin/time not found (package 'time'): no peak RSS figures"
fi
loopfs_setup thintrim-bench

now_ns() { date +%s%N; }
ms() { awk -v n="$1" 'BEGIN { printf "%.0f ms", n / 1e6 }'; }

# run_trim TOOL-ARGS... : runs the trim; sets OUT, WALL_NS, RSS_KB, RC
run_trim() {
	local t0 t1 rssf=$LOOPFS_RUN/.state/rss
	RC=0
	t0=$(now_ns)
	if [[ -n $TIME ]]; then
		OUT=$("$TIME" -f %M -o "$rssf" "$@" 2>&1) || RC=$?
	else
		OUT=$("$@" 2>&1) || RC=$?
	fi
	t1=$(now_ns)
	WALL_NS=$((t1 - t0))
	RSS_KB=$( [[ -n $TIME ]] && tail -n1 "$rssf" || echo -)
}

declare -a ROWS
row_fmt='%-36s %-6s %9s %12s %12s %12s %10s  %s\n'

echo "# $FSTYPES; image $IMAGE each, $MIB MiB written and deleted per filesystem; $(nproc) CPUs; $(uname -r)"
echo "# fstrim: $(fstrim --version 2>&1 | head -n1); thintrim: $THINTRIM"
echo "# run directory: $LOOPFS_RUN"
i=0
for fs in $FSTYPES; do
	for tool in fstrim thintrim thintrim-rate; do
		i=$((i + 1))
		name=$fs-$i
		loopfs_new_fs "$fs" "$name" "$IMAGE"
		mnt=$LOOPFS_MNT img=$LOOPFS_IMG dev=$LOOPFS_DEV
		loopfs_write_mib "$mnt/data" "$MIB"
		loopfs_delete "$mnt/data"
		loopfs_settle "$mnt"
		before=$(loopfs_alloc_bytes "$img")
		case $tool in
		fstrim) label="fstrim -v"; run_trim fstrim -v "$mnt" ;;
		thintrim) label="thintrim"; run_trim "$THINTRIM" trim --local "$mnt" ;;
		thintrim-rate)
			label="thintrim --rate $RATE --chunk $CHUNK"
			run_trim "$THINTRIM" trim --local --rate "$RATE" --chunk "$CHUNK" "$mnt"
			;;
		esac
		sync
		after=$(loopfs_alloc_bytes "$img")
		reported=$(sed -nE 's/.*\(([0-9]+) bytes\).*/\1/p' <<<"$OUT" | head -n1)
		note=
		((RC == 0)) || note="exit $RC: $(head -n1 <<<"$OUT")"
		# shellcheck disable=SC2059 # the format is ours
		ROWS+=("$(printf "$row_fmt" "$label" "$fs" "$(ms "$WALL_NS")" \
			"$(loopfs_human "${reported:-0}")" "$(loopfs_human "$before")" "$(loopfs_human "$after")" \
			"${RSS_KB} KiB" "$note")")
		printf '# %s on %s: %s\n' "$label" "$fs" "$(head -n1 <<<"$OUT")"
		loopfs_remove_fs "$mnt" "$dev" "$img"
	done
done

echo
# shellcheck disable=SC2059
printf "$row_fmt" tool fs wall reported "img before" "img after" "peak RSS" ""
# shellcheck disable=SC2059
printf "$row_fmt" ---- -- ---- -------- ---------- --------- -------- ""
printf '%s\n' "${ROWS[@]}"
cat <<NOTE

"reported" is what FITRIM returned: ext4 counts only block groups not trimmed
since mount, xfs and btrfs count all free space; the image columns are what
the host actually stores (stat %b x %B of the sparse image file).
NOTE
