#!/bin/bash
# test-disk-kinds.sh -- meson test vm-disk-kinds (suite vm). Host side of
# scenarios/disk-kinds.sh. The guest checks how each disk kind of run-vm.sh
# looks from inside (it fails the run if one does not); here we check what
# only the host can see, and what thintrim says about each kind:
#
#  raw      blkdiscard shrinks the qcow2 behind discard=unmap (data0) and does
#           NOT shrink the one behind discard=ignore (ignore-scsi), although
#           the guest saw an unmap-capable disk in both cases.
#  verdict  ext4 on nodisc-vblk (virtio-blk, discard=off) and nodisc-scsi
#           (scsi-hd, discard_granularity=0): Eligible false, and Reason names
#           the guest's disk and the hypervisor settings (Discard=on,
#           discard='unmap'); ext4 on data0 and ignore-scsi: Eligible true.
#  trap     `thintrim trim /mnt/good /mnt/ignore` after writing and deleting
#           128 MiB in each: both succeed and report bytes; data0 freed >= 80%
#           of its growth, ignore-scsi freed nothing (< 1%): a trim that
#           "succeeds" is no proof, only the host's image size is.
#  receipts LastReachedDiskBytes > 0 on both (the guest's disk took the
#           discards), at least the qcow2 shrink on data0; AT DISK in status.
#  verify   passes (exit 0) on data0, dropped (exit non-zero) on ignore-scsi
#           with QEMU's discard=unmap and Proxmox named; LastVerifyResult.
#  thin     an LVM thin pool with --discards nopassdown (trimvblk0): FITRIM
#           reports bytes, 0 reach the disk, status says swallowed, doctor
#           names ttvg/pool with `lvchange --discards passdown`; a btrfs with
#           discard=async has AsyncDiscard true and status says so.
#
# Environment: THINTRIM_DEB (required: the .deb to test; skip 77 without),
# THINTRIM_VM_OUT (default $TMPDIR/thintrim-vm-out/disk-kinds),
# THINTRIM_VM_CACHE, THINTRIM_VM_TIMEOUT.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/disk-kinds}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"

need_vm_tools
vm_release bookworm
need_deb
# thintrim-host (issue 18) at the mark host-prove: check-host-prove.sh.
export THINTRIM_HOST=${THINTRIM_HOST:-$here/../../build/src/host/thintrim-host}
[ -x "$THINTRIM_HOST" ] || fail "THINTRIM_HOST=$THINTRIM_HOST: no thintrim-host binary (meson passes its own)"
export THINTRIM_VM_ON_MARK=$here/host-prove-hook.sh
run_scenario disk-kinds 900
o=$out/share/out
bad=0
bad() { echo "  BAD: $*"; bad=1; }

echo "raw: 64 MiB written to the whole disk, then blkdiscard of that range"
written=$(gres written_bytes)
for disk in data0 ignore-scsi; do
    w=$(alloc written "$disk")
    d=$(alloc discarded "$disk")
    echo "  $disk: written $(mib "$w") MiB, after blkdiscard $(mib "$d") MiB"
    [ "$w" -ge $((written * 9 / 10)) ] || bad "$disk: only $(mib "$w") MiB allocated after writing $(mib "$written") MiB"
    case $disk in
    data0) [ $(( (w - d) * 5)) -ge $((written * 4)) ] || bad "data0: blkdiscard freed only $(mib $((w - d))) MiB" ;;
    ignore-scsi) [ "$d" -eq "$w" ] || bad "ignore-scsi: the image changed ($(mib "$w") -> $(mib "$d") MiB): discard=ignore not in effect?" ;;
    esac
done

echo "verdict: Eligible and Reason of ext4 on each kind (busctl get-property)"
for serial in trimdata0 ignore-scsi nodisc-vblk nodisc-scsi; do
    dev=$(gres "kind.$serial.dev")
    eligible=$(gres "kind.$serial.eligible")
    reason=$(jq -r .data "$o/reason-$serial.json") || fail "no Reason in $o/reason-$serial.json"
    echo "  $serial ($dev): Eligible $eligible: $reason"
    case $serial in
    nodisc-*)
        [ "$eligible" = false ] || bad "$serial: Eligible $eligible, want false"
        grep -qw -- "$dev" <<<"$reason" || bad "$serial: Reason does not name the disk $dev"
        grep -qi -- 'virtual disk' <<<"$reason" || bad "$serial: Reason does not say it is a virtual disk"
        grep -qi -- 'discard=on' <<<"$reason" || bad "$serial: Reason does not give Proxmox's Discard=on"
        grep -qF -- "discard='unmap'" <<<"$reason" || bad "$serial: Reason does not give libvirt's discard='unmap'"
        ;;
    *) [ "$eligible" = true ] || bad "$serial: Eligible $eligible, want true" ;;
    esac
done

echo "trap: $(mib "$(gres fs_written_bytes)") MiB written to ext4 on data0 and ignore-scsi, deleted, \`thintrim trim\` (exit $(gres trim.cli_rc))"
[ "$(gres trim.cli_rc)" = 0 ] || bad "thintrim trim /mnt/good /mnt/ignore exited $(gres trim.cli_rc)"
fs_written=$(gres fs_written_bytes)
for serial in trimdata0 ignore-scsi; do
    disk=${serial/trimdata0/data0}
    b=$(alloc fs-base "$disk"); w=$(alloc fs-written "$disk"); d=$(alloc fs-deleted "$disk"); t=$(alloc fs-trimmed "$disk")
    grew=$((w - b)); freed=$((d - t))
    result=$(gres "trim.$serial.LastTrimResult")
    bytes=$(gres "trim.$serial.LastTrimmedBytes")
    echo "  $disk: $(mib "$b") -> written $(mib "$w") -> deleted $(mib "$d") -> trimmed $(mib "$t") MiB" \
        "(freed $(pct "$((w - t))" "$grew")% of the growth); LastTrimResult $result, LastTrimmedBytes $bytes"
    [ "$result" = success ] || bad "$serial: LastTrimResult $result"
    [ "$bytes" -ge $((fs_written * 9 / 10)) ] || bad "$serial: LastTrimmedBytes $bytes < 90% of the $fs_written deleted"
    [ $((grew * 10)) -ge $((fs_written * 9)) ] || bad "$disk: grew only $(mib "$grew") MiB"
    case $disk in
    data0) [ $(( (w - t) * 5)) -ge $((grew * 4)) ] || bad "data0: the trim freed only $(mib $((w - t))) MiB" ;;
    ignore-scsi) [ $((freed * 100)) -lt "$grew" ] ||
        bad "ignore-scsi: the trim freed $(mib "$freed") MiB: discard=ignore should keep every byte" ;;
    esac
done
echo "  \`thintrim trim /mnt/nodisc-vblk\` exited $(gres trim.nodisc-vblk.cli_rc)"
[ "$(gres trim.nodisc-vblk.cli_rc)" = 1 ] || bad "thintrim trim of a disk without discard exited $(gres trim.nodisc-vblk.cli_rc), want 1"

echo "receipts: LastReachedDiskBytes after that trim (the guest's disk counters)"
for serial in trimdata0 ignore-scsi; do
    disk=${serial/trimdata0/data0}
    receipt=$(gres "receipt.$serial")
    freed=$(($(alloc fs-deleted "$disk") - $(alloc fs-trimmed "$disk")))
    echo "  $serial: $(mib "$receipt") MiB reached the disk; the host freed $(mib "$freed") MiB"
    [ "$receipt" -gt 0 ] || bad "$serial: LastReachedDiskBytes $receipt, want > 0"
    # An upper bound of what the host frees.
    [ "$serial" != trimdata0 ] || [ "$receipt" -ge "$freed" ] ||
        bad "trimdata0: $receipt bytes reached the disk, less than the $freed the qcow2 shrank"
done
grep -q 'AT DISK' "$o/status.txt" || bad "thintrim status has no AT DISK column"

echo "verify: discard=unmap passes, discard=ignore is dropped and names the host settings"
for serial in trimdata0 ignore-scsi; do
    rc=$(gres "verify.$serial.rc")
    verdict=$(jq -r '.results[0].verdict' "$o/verify-$serial.json") || fail "no verify result in $o/verify-$serial.json"
    message=$(jq -r '.results[0].message' "$o/verify-$serial.json")
    echo "  $serial: exit $rc, $verdict (recorded $(gres "verify.$serial.recorded")): $message"
    case $serial in
    trimdata0)
        if [ "$rc" != 0 ] || [ "$verdict" != passes ]; then bad "trimdata0: verify $verdict (exit $rc), want passes (0)"; fi ;;
    ignore-scsi)
        if [ "$rc" = 0 ] || [ "$verdict" != dropped ]; then bad "ignore-scsi: verify $verdict (exit $rc), want dropped (non-zero)"; fi
        grep -q 'discard=unmap' <<<"$message" || bad "ignore-scsi: the verdict does not name QEMU's discard=unmap"
        grep -qi 'proxmox' <<<"$message" || bad "ignore-scsi: the verdict does not name Proxmox's Discard setting" ;;
    esac
    [ "$(gres "verify.$serial.recorded")" = "$verdict" ] || bad "$serial: LastVerifyResult is not the verdict"
done

echo "thin pool --discards nopassdown: \`thintrim trim /mnt/thin\` (exit $(gres thin.cli_rc))"
thin_trimmed=$(gres thin.LastTrimmedBytes)
thin_reached=$(gres thin.LastReachedDiskBytes)
echo "  FITRIM reported $(mib "$thin_trimmed") MiB, $(mib "$thin_reached") MiB reached the disk"
[ "$thin_trimmed" -gt 0 ] || bad "thin: FITRIM reported no bytes"
[ "$thin_reached" = 0 ] || bad "thin: $thin_reached bytes reached the disk through a pool without passdown"
grep -q 'lvchange --discards passdown ttvg/pool' "$o/doctor.txt" || bad "thintrim doctor does not name ttvg/pool with its fix"
grep -q 'swallowed' "$o/status-thin.txt" || bad "thintrim status does not say the thin pool swallowed the discards"
echo "btrfs discard=async: AsyncDiscard $(gres async.AsyncDiscard)"
[ "$(gres async.AsyncDiscard)" = true ] || bad "btrfs mounted with discard=async: AsyncDiscard is not true"
grep -q 'discard=async' "$o/status-thin.txt" || bad "thintrim status does not mention btrfs discard=async"

# shellcheck source=tests/vm/check-host-prove.sh
. "$here/check-host-prove.sh"

echo "timing: image ${image_s}s, run ${run_s}s ($(tr '\t\n' '= ' <"$out/timing.txt"))"
[ "$bad" = 0 ] || fail "see BAD lines above; guest log $o/guest.log, busctl session $o/transcript.txt"
echo "PASS: discard=unmap shrinks; discard=off is named with the hypervisor fix; discard=ignore trims \"successfully\" and keeps every byte, and verify says dropped; a thin pool without passdown is named"
