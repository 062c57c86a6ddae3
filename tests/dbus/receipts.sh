#!/bin/bash
# Receipts and verify (issue 12) with real FITRIM on a loop device, through
# thintrimd on a private bus: a trim's LastReachedDiskBytes is what the loop
# device's own discard counter (/sys/block/LOOP/stat, field 14) moved by, at
# least what the sparse backing file shrank and at most the filesystem, and
# what `thintrim trim --json` reports through the daemon; a dry run records 0
# and leaves the last run's receipt; `thintrim verify` passes on the sparse-file loop and removes
# a probe a crash left behind; with the loop's queue/discard_max_bytes at 0,
# verify and trim say in a sentence that discards cannot reach the disk.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=lib.sh
source "$here/lib.sh"

dbus_test_setup thintrim-receipts ext4
dbus_data_fs
mnt=$LOOPFS_MNT
dev=$LOOPFS_DEV
img=$LOOPFS_IMG
loop=${dev#/dev/}
monitor_start
daemon_start --mountinfo "$TT_MOUNTINFO"
fs=$(fs_path "$mnt")
fsprop() { prop "$fs" "$TT_FS" "$1"; }
# Bytes of discards the loop device completed so far (in bash: mawk prints a
# product this large as 1.9e+10, which no arithmetic reads).
loop_discarded() { echo $(($(awk '{ print $14 }' "/sys/block/$loop/stat") * 512)); }

dd if=/dev/zero of="$mnt/fill" bs=1M count=64 conv=fsync status=none
rm -f -- "$mnt/fill"
sync
allocated=$(loopfs_alloc_bytes "$img")
before=$(loop_discarded)
job=$(trim_job "$mnt")
assert_true "the trim finishes" wait_job "$job" 60
after=$(loop_discarded)
shrink=$((allocated - $(loopfs_alloc_bytes "$img")))
reached=$(fsprop LastReachedDiskBytes)
assert_cmp "bytes reached the disk ($reached)" "$reached" -gt 0
assert_eq "they are what the loop device's discard counter moved by" "$((after - before))" "$reached"
assert_cmp "at least the backing file's shrink ($shrink)" "$reached" -ge "$shrink"
assert_cmp "at most the filesystem's size" "$reached" -le $((256 << 20))
assert_eq "the run's receipt is the filesystem's" "$reached" "$(mprop LastRunReachedDiskBytes)"
assert_eq "the lifetime total counts it" "$reached" "$(fsprop TotalReachedDiskBytes)"
job=$(trim_job "$mnt" 1 dry_run b true)
assert_true "a dry run finishes" wait_job "$job" 60
assert_eq "a dry run is no run: the last run's receipt stays" "$reached" "$(mprop LastRunReachedDiskBytes)"
out=$("$THINTRIM" --mountinfo "$TT_MOUNTINFO" trim --local --dry-run --json "$mnt" 2>/dev/null)
assert_match "a dry run records 0 at the disk" '"reached_disk_bytes": 0' "$out"
# Through the daemon (issue 18): FilesystemTrimmed carries no receipt, the CLI
# reads the filesystem's LastReachedDiskBytes once the job is done.
dd if=/dev/zero of="$mnt/fill" bs=1M count=16 conv=fsync status=none
rm -f -- "$mnt/fill"
sync
before=$(loop_discarded)
out=$("$THINTRIM" --mountinfo "$TT_MOUNTINFO" trim --json "$mnt" 2>&1)
after=$(loop_discarded)
json_reached=$(python3 -c 'import json, sys; print(json.loads(sys.stdin.read())["results"][0]["reached_disk_bytes"])' <<<"$out" 2>&1)
assert_eq "trim --json through the daemon reports the filesystem's receipt" "$(fsprop LastReachedDiskBytes)" "$json_reached"
assert_eq "which is what the loop device's discard counter moved by" "$((after - before))" "$json_reached"
out=$("$THINTRIM" --mountinfo "$TT_MOUNTINFO" trim --dry-run --json "$mnt" 2>&1)
assert_match "a dry run through the daemon has no receipt" '"reached_disk_bytes": null' "$out"
status=$("$THINTRIM" status 2>&1)
assert_match "status has the AT DISK column" "AT DISK" "$status"

out=$("$THINTRIM" verify "$mnt" 2>&1)
rc=$?
assert_eq "verify on the sparse-file loop exits 0" 0 "$rc"
assert_match "and passes" "$mnt: passes: .* no longer hold its data" "$out"
assert_eq "the verdict is on record" passes "$(fsprop LastVerifyResult)"
assert_cmp "with its time" "$(fsprop LastVerifyTime)" -gt 0
assert_true "no probe is left behind" test ! -e "$mnt/.thintrim-verify-probe"
echo "left by a crash" >"$mnt/.thintrim-verify-probe"
out=$("$THINTRIM" verify --json "$mnt" 2>&1)
assert_match "a probe a crash left behind does not stop the next verify" '"verdict": "passes"' "$out"
assert_true "which removes it" test ! -e "$mnt/.thintrim-verify-probe"

loopfs_zero_discard "$dev"
out=$("$THINTRIM" verify "$mnt" 2>&1)
assert_match "without discards on the loop, verify says why no discard can reach it" \
	"inconclusive: .*$loop has discards disabled \(queue/discard_max_bytes=0\)" "$out"
out=$("$THINTRIM" trim "$mnt" 2>&1)
rc=$?
assert_eq "and trim refuses" 1 "$rc"
assert_match "with the same reason" "cannot pass discards: .*$loop has discards disabled" "$out"

daemon_stop
loopfs_finish
