#!/bin/bash
# test-disk-kinds.sh -- meson test vm-disk-kinds (suite vm). Host side of
# scenarios/disk-kinds.sh: the guest checks how each disk kind of run-vm.sh
# looks from inside (it fails the run if one does not); here we check what
# only the host can see: blkdiscard shrinks the qcow2 behind a discard=unmap
# drive and does NOT shrink the one behind discard=ignore, although the guest
# saw an unmap-capable disk in both cases.
#
# Environment: THINTRIM_VM_OUT (default $TMPDIR/thintrim-vm-out/disk-kinds).
# Exit 77 (skip) when not root or the VM tools are not installed.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/disk-kinds}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "the VM suite needs root"
for tool in qemu-system-x86_64 qemu-img mmdebstrap; do
    command -v "$tool" >/dev/null || skip "$tool not installed (run packaging/dev.sh deps)"
done

rc=0
"$here/run-vm.sh" --out "$out" --timeout "${THINTRIM_VM_TIMEOUT:-600}" disk-kinds || rc=$?
[ "$rc" = 77 ] && skip "run-vm.sh cannot run here"
[ "$rc" = 0 ] || fail "the disk-kinds scenario failed (rc $rc); logs in $out (share/out/guest.log)"

results=$out/results.tsv
alloc() {
    awk -F'\t' -v m="$1" -v d="$2" '$1 == m && $2 == d {print $3; found = 1} END {exit !found}' "$results" ||
        fail "no sample for mark $1, disk $2 in $results"
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
written=$(awk -F'\t' '$1 == "written_bytes" {print $2}' "$out/share/out/guest-results.tsv")
[ -n "$written" ] || fail "the guest did not report written_bytes"

for disk in data0 ignore-scsi; do
    w=$(alloc written "$disk")
    d=$(alloc discarded "$disk")
    echo "$disk: written $(mib "$w") MiB, after blkdiscard $(mib "$d") MiB"
    [ "$w" -ge $((written * 9 / 10)) ] || fail "$disk: only $(mib "$w") MiB allocated after writing $(mib "$written") MiB"
    case $disk in
    data0) [ $(( (w - d) * 5)) -ge $((written * 4)) ] || fail "data0: blkdiscard freed only $(mib $((w - d))) MiB" ;;
    ignore-scsi) [ "$d" -eq "$w" ] || fail "ignore-scsi: the image changed ($(mib "$w") -> $(mib "$d") MiB): discard=ignore not in effect?" ;;
    esac
done
echo "PASS: discard=unmap shrinks the image; discard=ignore silently keeps it (guest saw unmap on both)"
