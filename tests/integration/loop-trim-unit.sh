#!/bin/bash
# loop-trim-unit.sh - runs test-trim's hidden case '[.root]' ("FITRIM on a
# real filesystem, chunked, cancelled and resumed": the library's trim() stops
# after the first chunk and resumes from its offset) on fresh ext4 and xfs
# filesystems on loop devices, with THINTRIM_TEST_MOUNT/THINTRIM_TEST_FSTYPE
# set. loop-trim.sh trims through the CLI and never stops a trim half way,
# so this case is not covered there.
#
#   tests/integration/loop-trim-unit.sh build/tests/test-trim
#
# Needs root, loop devices, mkfs.ext4 and mkfs.xfs (exit 77 otherwise).
set -uo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/loopfs.sh
. "$here/../lib/loopfs.sh"

TEST_TRIM=${1:-${THINTRIM_TEST_TRIM:-}}
[[ -x $TEST_TRIM ]] || loopfs_die "usage: $0 PATH-TO-test-trim (or set THINTRIM_TEST_TRIM)"

loopfs_require_root_loop
loopfs_require_mkfs ext4 xfs
loopfs_setup thintrim-loop-trim-unit

for t in ext4 xfs; do
	loopfs_new_fs "$t" "$t" 1G
	loopfs_write_mib "$LOOPFS_MNT/blob" 300
	loopfs_delete "$LOOPFS_MNT/blob"
	loopfs_settle "$LOOPFS_MNT"
	before=$(loopfs_alloc_bytes "$LOOPFS_IMG")
	out=$(THINTRIM_TEST_MOUNT=$LOOPFS_MNT THINTRIM_TEST_FSTYPE=$t "$TEST_TRIM" '[.root]' 2>&1)
	rc=$?
	# shellcheck disable=SC2001 # prefix every line
	sed 's/^/#   /' <<<"$out"
	after=$(loopfs_alloc_bytes "$LOOPFS_IMG")
	assert_eq "$t: test-trim '[.root]' passes" 0 "$rc"
	assert_match "$t: the case ran (one test case, not zero)" "in 1 test case" "$out"
	assert_cmp "$t: the image shrank by at least 250 MiB ($(loopfs_human "$before") -> $(loopfs_human "$after"))" \
		$((before - after)) -ge $((250 * 1048576))
done

loopfs_verify_cleanup
loopfs_finish
