#!/bin/bash
# loop-trim.sh - root integration test: thintrim trims real filesystems on
# sparse images attached to loop devices, and the images get their space back.
#
#   THINTRIM=build/src/cli/thintrim tests/integration/loop-trim.sh
#   tests/integration/loop-trim.sh build/src/cli/thintrim
#
# Needs root, loop devices, mkfs.{ext4,xfs,btrfs}, sfdisk and jq (exit 77
# otherwise).  Only loop devices and mounts created here are touched; every
# --all run gets a --mountinfo file listing only this test's mounts.
# THINTRIM_TEST_MIB (default 200) sets how much data each filesystem gets.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"

THINTRIM=${1:-${THINTRIM:-}}
[[ -n $THINTRIM ]] || loopfs_die "usage: $0 PATH-TO-thintrim (or set THINTRIM)"
[[ -x $THINTRIM ]] || loopfs_die "$THINTRIM is not an executable"
THINTRIM=$(realpath -- "$THINTRIM")
export THINTRIM

loopfs_require_root_loop
loopfs_require_mkfs ext4 xfs btrfs
loopfs_require_cmd jq sfdisk blockdev
loopfs_setup thintrim-loop-test

MIB=${THINTRIM_TEST_MIB:-200}
SMALL_MIB=64
MINFO=$LOOPFS_RUN/mountinfo

# run_tt OUTVAR RCVAR ARGS...: run thintrim, keep stdout+stderr and exit code
run_tt() {
	local -n _out=$1 _rc=$2
	shift 2
	_rc=0
	_out=$("$THINTRIM" "$@" 2>&1) || _rc=$?
	printf '# $ thintrim %s  (exit %s)\n' "$*" "$_rc"
	# shellcheck disable=SC2001 # prefix every line
	[[ -z $_out ]] || sed 's/^/#   /' <<<"$_out"
}

# The output line for mount point MP ("MP: ...").
line_for() { grep -F -- "$2: " <<<"$1" | grep -E -- "^$(sed 's/[][\.*^$/]/\\&/g' <<<"$2"): " || true; }

# Bytes reported in a "... (N bytes) trimmed ..." line, or empty.
reported_bytes() { sed -nE 's/.*\(([0-9]+) bytes\).*/\1/p' <<<"$1" | head -n1; }

alloc() { loopfs_alloc_bytes "$1"; }

# Filesystem state: per name, image path, mount point, loop device.
declare -A IMG MNT DEV WRITTEN

# fill NAME MIB: write MIB MiB, delete it, sync; records WRITTEN[NAME] as the
# growth of the backing file caused by the data.
fill() {
	local name=$1 mib=$2 before after_write after_delete
	before=$(alloc "${IMG[$name]}")
	loopfs_write_mib "${MNT[$name]}/data" "$mib"
	after_write=$(alloc "${IMG[$name]}")
	loopfs_delete "${MNT[$name]}/data"
	loopfs_settle "${MNT[$name]}"
	after_delete=$(alloc "${IMG[$name]}")
	WRITTEN[$name]=$((after_write - before))
	printf '# %-6s %d MiB written and deleted: image %s -> %s -> %s allocated\n' "$name" "$mib" \
		"$(loopfs_human "$before")" "$(loopfs_human "$after_write")" "$(loopfs_human "$after_delete")"
	if ((WRITTEN[$name] < mib * 1048576 * 9 / 10)); then
		fail "$name: writing $mib MiB grows the image" ">= $((mib * 1048576 * 9 / 10)) bytes" "${WRITTEN[$name]}"
	fi
}

# check_shrunk WHAT NAME BEFORE: the image shrank by >= 80% of WRITTEN[NAME]
check_shrunk() {
	local what=$1 name=$2 before=$3 after freed
	after=$(alloc "${IMG[$name]}")
	freed=$((before - after))
	assert_cmp "$what: image gives back >= 80% of the ${WRITTEN[$name]} bytes written (freed $freed, $(loopfs_human "$before") -> $(loopfs_human "$after"))" \
		"$freed" -ge "$((WRITTEN[$name] * 8 / 10))"
}

# check_not_shrunk WHAT NAME BEFORE
check_not_shrunk() {
	local after
	after=$(alloc "${IMG[$2]}")
	assert_cmp "$1: image not shrunk ($(loopfs_human "$3") -> $(loopfs_human "$after"))" "$after" -ge "$3"
}

# check_trim_line WHAT OUTPUT MP: the line for MP reports > 0 bytes trimmed
check_trim_line() {
	local line bytes
	line=$(line_for "$2" "$3")
	bytes=$(reported_bytes "$line")
	assert_match "$1: output line reports the trimmed bytes" "^$3: .*\(([0-9]+) bytes\) trimmed" "$line"
	assert_cmp "$1: reported trimmed bytes > 0" "${bytes:-0}" -gt 0
}

# --- the filesystems --------------------------------------------------------

echo "# run directory: $LOOPFS_RUN"
for t in ext4 xfs btrfs; do
	loopfs_new_fs "$t" "$t" 1G
	IMG[$t]=$LOOPFS_IMG MNT[$t]=$LOOPFS_MNT DEV[$t]=$LOOPFS_DEV
done

# partitioned loop: ext4 on p2
loopfs_new_partitioned part 1G ext4
IMG[part]=$LOOPFS_IMG MNT[part]=$LOOPFS_MNT DEV[part]=$LOOPFS_DEV

# read-only mount: data written and deleted while rw, then remounted ro
loopfs_new_fs ext4 ro 512M
IMG[ro]=$LOOPFS_IMG MNT[ro]=$LOOPFS_MNT DEV[ro]=$LOOPFS_DEV

# loop device refusing discards (queue/discard_max_bytes = 0)
loopfs_new_fs ext4 nodisc 512M
IMG[nodisc]=$LOOPFS_IMG MNT[nodisc]=$LOOPFS_MNT DEV[nodisc]=$LOOPFS_DEV

for n in ext4 xfs btrfs part; do fill "$n" "$MIB"; done
for n in ro nodisc; do fill "$n" "$SMALL_MIB"; done

mount -o remount,ro -- "${MNT[ro]}" || loopfs_die "remount ro ${MNT[ro]} failed"
loopfs_zero_discard "${DEV[nodisc]}"
NODISC_LOOP=${DEV[nodisc]#/dev/}

# a bind mount of the ext4 filesystem: the same filesystem a second time
loopfs_bind "${MNT[ext4]}" ext4-bind >/dev/null
BIND=$LOOPFS_MNT

RO_ALLOC=$(alloc "${IMG[ro]}")
NODISC_ALLOC=$(alloc "${IMG[nodisc]}")

# --- list --------------------------------------------------------------------

loopfs_mountinfo "$MINFO"
run_tt out rc --mountinfo "$MINFO" list --all --json
assert_eq "list --all --json: exit code" 0 "$rc"
if ! jq -e '.filesystems | type == "array"' >/dev/null 2>&1 <<<"$out"; then
	fail "list --all --json: valid JSON with a filesystems array" '{"filesystems":[...]}' "$out"
else
	field() { jq -r --arg mp "$1" ".filesystems[] | select(.mount_point == \$mp) | $2" <<<"$out"; }
	for n in ext4 xfs btrfs part; do
		assert_eq "list: ${MNT[$n]} ($n) is eligible" true "$(field "${MNT[$n]}" '.eligible')"
	done
	# the ext4 filesystem is listed twice; exactly one entry is managed, the
	# bind mount is the duplicate
	assert_eq "list: bind mount $BIND has skip_reason duplicate" duplicate "$(field "$BIND" '.skip_reason')"
	assert_eq "list: the ext4 filesystem is managed once (over ${MNT[ext4]} and $BIND)" 1 \
		"$(jq --arg a "${MNT[ext4]}" --arg b "$BIND" \
			'[.filesystems[] | select((.mount_point == $a or .mount_point == $b) and .managed)] | length' <<<"$out")"
	assert_eq "list: ${MNT[ro]} has skip_reason read-only" read-only "$(field "${MNT[ro]}" '.skip_reason')"
	assert_eq "list: ${MNT[nodisc]} (discard_max_bytes=0) is not eligible" false "$(field "${MNT[nodisc]}" '.eligible')"
	assert_eq "list: ${MNT[nodisc]} reports discard_max_bytes 0" 0 "$(field "${MNT[nodisc]}" '.discard_max_bytes')"
	assert_match "list: ${MNT[nodisc]} gives a reason" '.' "$(field "${MNT[nodisc]}" '.reason // empty')"
	assert_eq "list: only this test's mounts are listed" "" \
		"$(jq -r --arg run "$LOOPFS_RUN/" '.filesystems[] | select(.mount_point | startswith($run) | not) | .mount_point' <<<"$out")"
	unset -f field
fi

# --- stack -------------------------------------------------------------------

run_tt out rc stack "${MNT[nodisc]}" --json
assert_eq "stack nodisc: exit code" 0 "$rc"
assert_eq "stack nodisc: not eligible" false "$(jq -r '.eligible' <<<"$out" 2>/dev/null)"
assert_eq "stack nodisc: culprit is the loop device $NODISC_LOOP" "$NODISC_LOOP" \
	"$(jq -r --arg l "$NODISC_LOOP" '.culprits[]? | select(. == $l or . == "/dev/" + $l)' <<<"$out" 2>/dev/null | sed 's,^/dev/,,' | head -n1)"
assert_match "stack nodisc: a layer for $NODISC_LOOP does not pass discards" false \
	"$(jq -r --arg l "$NODISC_LOOP" '.layers[]? | select(.name == $l or .name == "/dev/" + $l) | .passes' <<<"$out" 2>/dev/null)"

run_tt out rc stack "${MNT[part]}" --json
assert_eq "stack part: exit code" 0 "$rc"
assert_eq "stack part: eligible" true "$(jq -r '.eligible' <<<"$out" 2>/dev/null)"
assert_match "stack part: the partition and its loop device are layers" \
	"${DEV[part]#/dev/}p2.*${DEV[part]#/dev/}" "$(jq -r '[.layers[]?.name] | join(" ")' <<<"$out" 2>/dev/null)"

# --- a mount point thintrim does not manage ----------------------------------

tmpfs_mp=$LOOPFS_RUN/mnt/tmpfs
mkdir -p "$tmpfs_mp"
echo "$tmpfs_mp" >>"$LOOPFS_RUN/.state/mounts"
mount -t tmpfs -o size=1M thintrim-test "$tmpfs_mp"
loopfs_mountinfo "$MINFO"
run_tt out rc --mountinfo "$MINFO" trim --local "$tmpfs_mp"
assert_eq "trim of an unmanaged mount point (tmpfs): exit code" 1 "$rc"
assert_match "trim of an unmanaged mount point: the message names it" "$tmpfs_mp" "$out"
umount "$tmpfs_mp"

nomp=$LOOPFS_RUN/mnt/not-a-mount
mkdir -p "$nomp"
loopfs_mountinfo "$MINFO"
run_tt out rc --mountinfo "$MINFO" trim --local "$nomp"
assert_eq "trim of a directory that is no mount point: exit code" 1 "$rc"
assert_match "trim of a directory that is no mount point: the message names it" "$nomp" "$out"

# --- a read-only mount named explicitly ---------------------------------------

run_tt out rc --mountinfo "$MINFO" trim --local "${MNT[ro]}"
assert_match "trim of the read-only mount: says skipped / not trimmed because read-only" \
	"${MNT[ro]}.*(skipped|not trimmed).*read-only" "$out"
assert_no_match "trim of the read-only mount: reports nothing trimmed" "bytes\) trimmed" "$out"
assert_eq "trim of the read-only mount: image untouched" "$RO_ALLOC" "$(alloc "${IMG[ro]}")"

# --- dry run: nothing shrinks --------------------------------------------------

declare -A BEFORE
for n in "${!IMG[@]}"; do BEFORE[$n]=$(alloc "${IMG[$n]}"); done
run_tt out rc --mountinfo "$MINFO" trim --local --all --dry-run --json
assert_eq "trim --all --dry-run: exit code" 0 "$rc"
for n in "${!IMG[@]}"; do check_not_shrunk "trim --all --dry-run: $n" "$n" "${BEFORE[$n]}"; done
assert_eq "trim --all --dry-run --json: the ext4 filesystem mounted twice is handled once" 1 \
	"$(jq --arg a "${MNT[ext4]}" --arg b "$BIND" \
		'[.results[]? | select((.mount_point == $a or .mount_point == $b) and .result != "skipped")] | length' <<<"$out" 2>/dev/null)"

# --- each filesystem on its own --------------------------------------------------

for n in ext4 xfs btrfs part; do
	before=$(alloc "${IMG[$n]}")
	run_tt out rc --mountinfo "$MINFO" trim --local "${MNT[$n]}"
	assert_eq "trim --local ${MNT[$n]} ($n): exit code" 0 "$rc"
	check_trim_line "trim $n" "$out" "${MNT[$n]}"
	check_shrunk "trim $n" "$n" "$before"
done

# --- chunked path, no rate limit ---------------------------------------------

fill ext4 "$MIB"
before=$(alloc "${IMG[ext4]}")
run_tt out rc --mountinfo "$MINFO" trim --local --chunk 64M --rate 0 "${MNT[ext4]}"
assert_eq "trim --chunk 64M --rate 0 ext4: exit code" 0 "$rc"
check_trim_line "trim --chunk 64M ext4" "$out" "${MNT[ext4]}"
check_shrunk "trim --chunk 64M --rate 0 ext4" ext4 "$before"

# --- --all: duplicate once, read-only skipped, no-discard loop not trimmed ------

fill ext4 "$MIB"
fill xfs "$MIB"
for n in "${!IMG[@]}"; do BEFORE[$n]=$(alloc "${IMG[$n]}"); done
loopfs_mountinfo "$MINFO"
run_tt out rc --mountinfo "$MINFO" trim --local --all
assert_eq "trim --local --all: exit code when every eligible filesystem succeeds" 0 "$rc"
check_shrunk "trim --all ext4" ext4 "${BEFORE[ext4]}"
check_shrunk "trim --all xfs" xfs "${BEFORE[xfs]}"
assert_eq "trim --all: the ext4 filesystem (also bind-mounted) is trimmed once" 1 \
	"$(grep -cE "^(${MNT[ext4]}|$BIND): .*trimmed" <<<"$out" || true)"
assert_eq "trim --all: one result line for the ext4 filesystem" 1 \
	"$(grep -cE "^(${MNT[ext4]}|$BIND): " <<<"$out" || true)"
line=$(line_for "$out" "${MNT[ro]}")
# the read-only mount is not managed (list shows it skipped, read-only), so it
# is not one of --all's eligible filesystems: thintrim(1) --all
assert_eq "trim --all: read-only mount left out" "" "$line"
check_not_shrunk "trim --all: read-only" ro "${BEFORE[ro]}"
line=$(line_for "$out" "${MNT[nodisc]}")
assert_match "trim --all: the no-discard filesystem's line says it was not trimmed" \
	"^${MNT[nodisc]}: (not eligible|skipped|unsupported|not supported)" "$line"
assert_match "trim --all: ... and why (discard / $NODISC_LOOP)" "(discard|$NODISC_LOOP)" "$line"
assert_no_match "trim --all: ... and reports no trimmed bytes" "trimmed" "$line"
check_not_shrunk "trim --all: no-discard" nodisc "${BEFORE[nodisc]}"
# --- --all with a configuration: [Filesystems] Exclude= is honoured -------------

fill ext4 "$MIB"
fill xfs "$MIB"
for n in ext4 xfs; do BEFORE[$n]=$(alloc "${IMG[$n]}"); done
conf=$LOOPFS_RUN/exclude.conf
printf '[Filesystems]\nExclude=%s\n' "${MNT[xfs]}" >"$conf"
run_tt out rc --mountinfo "$MINFO" trim --local --all --config "$conf"
assert_eq "trim --local --all --config (Exclude= the xfs mount): exit code" 0 "$rc"
check_shrunk "trim --all, xfs excluded: ext4 still trimmed" ext4 "${BEFORE[ext4]}"
check_not_shrunk "trim --all, xfs excluded: xfs" xfs "${BEFORE[xfs]}"
assert_eq "trim --all, xfs excluded: no line reports xfs trimmed" 0 \
	"$(grep -c "^${MNT[xfs]}: .*trimmed" <<<"$out" || true)"
# list follows the same configuration: what trim --all leaves out is not
# listed as trimmed, and --all says why.
# (stdout alone: without the daemon, list says so on stderr)
rc=0
out=$("$THINTRIM" --mountinfo "$MINFO" list --json --config "$conf" 2>/dev/null) || rc=$?
assert_eq "list --config (xfs excluded): exit code" 0 "$rc"
assert_eq "list --config (xfs excluded): xfs not listed, ext4 listed" "0 1" \
	"$(jq --arg x "${MNT[xfs]}" --arg e "${MNT[ext4]}" -r \
		'[([.filesystems[] | select(.mount_point == $x)] | length), ([.filesystems[] | select(.mount_point == $e)] | length)] | join(" ")' <<<"$out")"
run_tt out rc --mountinfo "$MINFO" list --all --json --config "$conf"
assert_eq "list --all --config: xfs has skip_reason excluded" excluded \
	"$(jq -r --arg x "${MNT[xfs]}" '.filesystems[] | select(.mount_point == $x) | .skip_reason' <<<"$out")"

assert_eq "whole run: read-only image untouched (allocated bytes)" "$RO_ALLOC" "$(alloc "${IMG[ro]}")"
assert_cmp "whole run: no-discard image not shrunk" "$(alloc "${IMG[nodisc]}")" -ge "$NODISC_ALLOC"

# --- cleanup -------------------------------------------------------------------

loopfs_verify_cleanup
loopfs_finish
