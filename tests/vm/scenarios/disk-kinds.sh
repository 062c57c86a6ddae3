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
