#!/bin/bash
# disk-kinds -- guest side of vm-disk-kinds (host: tests/vm/test-disk-kinds.sh).
# Checks what the guest sees for each kind of disk run-vm.sh offers, and shows
# the classic trap: a scsi-hd on -drive discard=ignore looks unmap-capable,
# blkdiscard "succeeds", and the qcow2 does not shrink.
#
#   disk (serial)  qemu                                   guest must see
#   trimdata0      scsi-hd, -drive discard=unmap          provisioning_mode=unmap, max>0
#   trimvblk0      virtio-blk, -drive discard=unmap       max>0
#   nodisc-vblk    virtio-blk ...,discard=off             max=0
#   nodisc-scsi    scsi-hd ...,discard_granularity=0      provisioning_mode=full, max=0
#   ignore-scsi    scsi-hd, -drive discard=ignore         provisioning_mode=unmap, max>0 (!)
#
# Marks: written (64 MiB on trimdata0 and ignore-scsi), discarded (after
# blkdiscard of that range on both).
#
# With thintrim installed (THINTRIM_DEB), then: ext4 (1 GiB) on trimdata0
# (/mnt/good), ignore-scsi (/mnt/ignore), nodisc-vblk and nodisc-scsi
# (/mnt/nodisc-vblk, /mnt/nodisc-scsi). The daemon's verdict on each over
# busctl (Eligible, Reason: the nodisc ones must name the virtual disk and the
# hypervisor setting), then marks fs-written (128 MiB in /mnt/good and
# /mnt/ignore), fs-deleted, fs-trimmed (after `thintrim trim /mnt/good
# /mnt/ignore`): the trap trims "successfully", reports bytes, and its qcow2
# keeps every byte. Then receipts and verify (issue 12): LastReachedDiskBytes
# of both, `thintrim verify` of both (out/verify-*.json), and on trimvblk0 an
# LVM thin pool with --discards nopassdown (ext4 at /mnt/thin: trimmed, its
# receipt, `thintrim doctor` in out/doctor.txt) and a btrfs with
# discard=async (/mnt/async: AsyncDiscard). Results: kind.*, trim.*,
# receipt.*, verify.*, thin.*, async.*; busctl output in out/transcript.txt.
#
# vm-disks: nodisc-vblk nodisc-scsi ignore-scsi
. /trimtest/guest/lib.sh

bad=0
check() { # serial want_max(0|>0) want_pm(unmap|full|-)
    local serial=$1 want_max=$2 want_pm=$3 dev n max pm=-
    dev=$(disk_by_serial "$serial")
    n=${dev#/dev/}
    read -r max <"/sys/block/$n/queue/discard_max_bytes"
    for p in /sys/block/"$n"/device/scsi_disk/*/provisioning_mode; do
        [ -f "$p" ] && read -r pm <"$p"
    done
    result "discard_max_bytes.$serial" "$max"
    result "provisioning_mode.$serial" "$pm"
    case $want_max in
    0) [ "$max" = 0 ] || { log "BAD $serial ($n): discard_max_bytes=$max, want 0"; bad=1; } ;;
    '>0') [ "$max" -gt 0 ] || { log "BAD $serial ($n): discard_max_bytes=0, want > 0"; bad=1; } ;;
    esac
    [ "$want_pm" = - ] || [ "$pm" = "$want_pm" ] || { log "BAD $serial ($n): provisioning_mode=$pm, want $want_pm"; bad=1; }
    log "$serial = $dev: discard_max_bytes=$max provisioning_mode=$pm"
}
check trimdata0 '>0' unmap
check trimvblk0 '>0' -
check nodisc-vblk 0 -
check nodisc-scsi 0 full
check ignore-scsi '>0' unmap
[ "$bad" = 0 ] || die "a disk does not look as run-vm.sh promises"

good=$(disk_by_serial trimdata0)
trap_disk=$(disk_by_serial ignore-scsi)
for d in "$good" "$trap_disk"; do
    run dd if=/dev/zero of="$d" bs=1M count=64 oflag=direct status=none
done
result written_bytes $((64 << 20))
mark written
for d in "$good" "$trap_disk"; do
    run blkdiscard -f -o 0 -l $((64 << 20)) "$d"
done
mark discarded

if ! have_thintrim; then
    log "thintrim not installed (no THINTRIM_DEB): the thintrim part is skipped"
    exit 0
fi
save_journal_on_exit
tt_quiet_schedule

fs_mib=128
declare -A mnt=([trimdata0]=/mnt/good [ignore-scsi]=/mnt/ignore [nodisc-vblk]=/mnt/nodisc-vblk
    [nodisc-scsi]=/mnt/nodisc-scsi)
for serial in trimdata0 ignore-scsi nodisc-vblk nodisc-scsi; do
    dev=$(disk_by_serial "$serial")
    result "kind.$serial.dev" "${dev#/dev/}"
    # 1 GiB is plenty, and keeps mkfs's inode tables and journal small on the
    # disks where they cannot be discarded again.
    run mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$dev" 1G
    run mkdir -p "${mnt[$serial]}"
    run mount "$dev" "${mnt[$serial]}"
done
for serial in trimdata0 ignore-scsi nodisc-vblk nodisc-scsi; do
    m=${mnt[$serial]}
    obj=$(tt_fs_object "$m")
    bus busctl get-property org.thintrim.ThinTrim1 "$obj" org.thintrim.ThinTrim1.Filesystem Eligible Reason DiscardMaxBytes
    result "kind.$serial.eligible" "$(tt_get "$obj" "$TT_FS" Eligible)"
    rc=0
    busctl --json=short get-property "$TT_DEST" "$obj" "$TT_FS" Reason >"$THINTRIM_VM_OUT/reason-$serial.json" || rc=$?
    [ "$rc" = 0 ] || die "cannot read the Reason of $m"
done

mark fs-base
for m in /mnt/good /mnt/ignore; do
    run dd if=/dev/zero of="$m/fill" bs=1M count=$fs_mib conv=fsync status=none
done
result fs_written_bytes $((fs_mib << 20))
mark fs-written
run rm /mnt/good/fill /mnt/ignore/fill
mark fs-deleted
rc=0
bus thintrim trim /mnt/good /mnt/ignore || rc=$?
result trim.cli_rc "$rc"
tt_wait_idle 120
mark fs-trimmed
for serial in trimdata0 ignore-scsi; do
    obj=$(tt_fs_object "${mnt[$serial]}")
    bus busctl get-property org.thintrim.ThinTrim1 "$obj" org.thintrim.ThinTrim1.Filesystem LastTrimResult LastTrimmedBytes
    for p in LastTrimResult LastTrimmedBytes LastTrimMessage; do
        result "trim.$serial.$p" "$(tt_get "$obj" "$TT_FS" "$p")"
    done
done
# What the nodisc ones say when asked anyway.
rc=0
bus thintrim trim /mnt/nodisc-vblk || rc=$?
result trim.nodisc-vblk.cli_rc "$rc"

# --- receipts and verify (issue 12) ---------------------------------------------
# What reached the virtual disks during the trim above (the guest's own
# counters: a scsi-hd on discard=ignore completes the discards it drops).
for serial in trimdata0 ignore-scsi; do
    obj=$(tt_fs_object "${mnt[$serial]}")
    result "receipt.$serial" "$(tt_get "$obj" "$TT_FS" LastReachedDiskBytes)"
done
bus thintrim status >"$THINTRIM_VM_OUT/status.txt" || true
# The proof: a probe written, discarded, read back from the device.
for serial in trimdata0 ignore-scsi; do
    rc=0
    thintrim verify --json "${mnt[$serial]}" >"$THINTRIM_VM_OUT/verify-$serial.json" || rc=$?
    result "verify.$serial.rc" "$rc"
    result "verify.$serial.recorded" "$(tt_get "$(tt_fs_object "${mnt[$serial]}")" "$TT_FS" LastVerifyResult)"
done
bus thintrim verify /mnt/good /mnt/ignore || true
# A thin pool that keeps discards to itself (trimvblk0, virtio-blk on
# discard=unmap): FITRIM reports bytes, the disk receives none, and doctor
# names the pool with its fix. A btrfs with discard=async on a second thin LV.
tv=$(disk_by_serial trimvblk0)
run pvcreate -qq -y "$tv"
run vgcreate -qq ttvg "$tv"
run lvcreate -qq -L 512M -T ttvg/pool --discards nopassdown
run lvcreate -qq -V 1G -T ttvg/pool -n thin
run lvcreate -qq -V 1G -T ttvg/pool -n async
run mkfs.ext4 -q -E nodiscard /dev/ttvg/thin
run mkfs.btrfs -q -f /dev/ttvg/async
run mkdir -p /mnt/thin /mnt/async
run mount /dev/ttvg/thin /mnt/thin
run mount -o discard=async /dev/ttvg/async /mnt/async
run dd if=/dev/zero of=/mnt/thin/fill bs=1M count=64 conv=fsync status=none
run rm /mnt/thin/fill
sync
thin_obj=$(tt_fs_object /mnt/thin)
rc=0
bus thintrim trim /mnt/thin || rc=$?
result thin.cli_rc "$rc"
tt_wait_idle 60
for p in LastTrimmedBytes LastReachedDiskBytes; do
    result "thin.$p" "$(tt_get "$thin_obj" "$TT_FS" "$p")"
done
bus thintrim doctor >"$THINTRIM_VM_OUT/doctor.txt" || true
result async.AsyncDiscard "$(tt_get "$(tt_fs_object /mnt/async)" "$TT_FS" AsyncDiscard)"
bus thintrim status >"$THINTRIM_VM_OUT/status-thin.txt" || true
# thintrim-host audit and prove from the host (issue 18): guest/host-prove.sh.
. /trimtest/guest/host-prove.sh
log "disk-kinds done"
