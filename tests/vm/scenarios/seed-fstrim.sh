#!/bin/bash
# seed-fstrim -- guest side of the vm-seed-stack test (host side:
# tests/vm/test-seed-stack.sh). Proves the harness without thintrim:
#
#   trimdata0/1 (scsi-hd, discard=unmap) -> sdX1 -> md raid1 (--assume-clean)
#     -> LUKS2 (--allow-discards) -> LVM vgseed -> root (ext4, 1G), data (xfs)
#   plus sda2 ext4 + a bind mount, swap on sdb2 with --discard (the seed-stack
#   fixture's layout), and trimvblk0 (virtio-blk, the second bus) -> vdX1 ext4
#   (built by guest/seed-stack.sh, shared with thintrim-stack).
#
# Not in the meson suite any more: vm-thintrim-stack covers the same stack with
# thintrim. Run it by hand (tests/vm/test-seed-stack.sh) to check the harness
# without a .deb.
#
# Marks: base (stack built), written (600 MiB in /mnt/root, 200 MiB in
# /mnt/vblk), deleted (files removed, no discard yet), trimmed (after
# `fstrim -v`; thintrim replaces this step later). Then every mount is trimmed
# and the sysfs tree captured as out/seed-stack.tar.gz.
#
# vm-disks:            (no extra disks; see run-vm.sh --disk)
. /trimtest/guest/lib.sh
. /trimtest/guest/seed-stack.sh

root_mib=600
vblk_mib=200

build_seed_stack
mark base

t0=$(date +%s.%N)
run dd if=/dev/zero of=/mnt/root/fill bs=1M count=$root_mib conv=fsync status=none
run dd if=/dev/zero of=/mnt/vblk/fill bs=1M count=$vblk_mib conv=fsync status=none
# What the host expects each image to grow by (test-seed-stack.sh reads these).
result written_bytes.data0 $((root_mib << 20))
result written_bytes.data1 $((root_mib << 20))
result written_bytes.vblk0 $((vblk_mib << 20))
result write_seconds "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
mark written

run rm /mnt/root/fill /mnt/vblk/fill
mark deleted

# thintrim replaces this step in later scenarios.
root_out=$(run fstrim -v /mnt/root)
vblk_out=$(run fstrim -v /mnt/vblk)
log "$root_out"
log "$vblk_out"
result fstrim_root "$root_out"
result fstrim_vblk "$vblk_out"
mark trimmed

# The rest of the stack, like the seed-stack fixture: fstrim on every mount,
# then capture the discard-relevant sysfs/proc tree.
for m in /mnt/data /mnt/plain /mnt/bind; do
    o=$(run fstrim -v "$m") || die "fstrim $m failed"
    log "$o"
    result "fstrim_${m#/mnt/}" "$o"
done
if have_thintrim; then
    log "thintrim is installed: $(thintrim --version 2>&1 | head -n1 || true)"
fi
capture seed-stack
log "seed-fstrim done"
