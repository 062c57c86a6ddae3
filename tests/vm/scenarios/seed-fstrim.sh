#!/bin/bash
# seed-fstrim -- guest side of the vm-seed-stack test (host side:
# tests/vm/test-seed-stack.sh). Proves the harness without thintrim:
#
#   trimdata0/1 (scsi-hd, discard=unmap) -> sdX1 -> md raid1 (--assume-clean)
#     -> LUKS2 (--allow-discards) -> LVM vgseed -> root (ext4, 1G), data (xfs)
#   plus sda2 ext4 + a bind mount, swap on sdb2 with --discard (the seed-stack
#   fixture's layout), and trimvblk0 (virtio-blk, the second bus) -> ext4.
#
# Marks: base (stack built), written (600 MiB in /mnt/root, 200 MiB in
# /mnt/vblk), deleted (files removed, no discard yet), trimmed (after
# `fstrim -v`; thintrim replaces this step later). Then every mount is trimmed
# and the sysfs tree captured as out/seed-stack.tar.gz.
#
# vm-disks:            (no extra disks; see run-vm.sh --disk)
. /trimtest/guest/lib.sh

root_mib=600
vblk_mib=200

sda=$(disk_by_serial trimdata0)
sdb=$(disk_by_serial trimdata1)
vdx=$(disk_by_serial trimvblk0)
log "data disks: trimdata0=$sda trimdata1=$sdb trimvblk0=$vdx"
for d in "$sda" "$sdb"; do
    n=${d#/dev/}
    log "$n: provisioning_mode=$(cat /sys/block/"$n"/device/scsi_disk/*/provisioning_mode)" \
        "discard_max_bytes=$(cat /sys/block/"$n"/queue/discard_max_bytes)"
done
{
    echo "# scenario seed-fstrim -- commands run in the guest, in order ($(uname -r))"
    echo "# guest data disks (by serial): trimdata0=$sda trimdata1=$sdb trimvblk0=$vdx"
} >>"$THINTRIM_VM_OUT/commands.txt"

run_stdin sfdisk -q -W always "$sda" <<EOF
label: gpt
size=3GiB, type=A19D880F-05FC-4D3B-A006-743F0F84911E, name=raid
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=plain
EOF
run_stdin sfdisk -q -W always "$sdb" <<EOF
label: gpt
size=3GiB, type=A19D880F-05FC-4D3B-A006-743F0F84911E, name=raid
type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name=swap
EOF
run udevadm settle
# --assume-clean: no initial resync, which would otherwise fill both images.
run mdadm --create /dev/md0 --level=1 --raid-devices=2 --metadata=1.2 --assume-clean --run --force \
    "${sda}1" "${sdb}1"
echo "head -c 32 /dev/urandom > /run/seed.key" >>"$THINTRIM_VM_OUT/commands.txt"
head -c 32 /dev/urandom >/run/seed.key
run cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file /run/seed.key /dev/md0
run cryptsetup open --allow-discards --key-file /run/seed.key /dev/md0 seedcrypt
run pvcreate -q /dev/mapper/seedcrypt
run vgcreate -q vgseed /dev/mapper/seedcrypt
run lvcreate -q -y -L 1G -n root vgseed
run lvcreate -q -y -l 100%FREE -n data vgseed
# lazy_itable_init=0: no ext4lazyinit thread writing inode tables between marks.
run mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 /dev/vgseed/root
run mkfs.xfs -q -f /dev/vgseed/data
run mkdir -p /mnt/root /mnt/data /mnt/plain /mnt/bind /mnt/vblk
run mount /dev/vgseed/root /mnt/root
run mount /dev/vgseed/data /mnt/data
run mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "${sda}2"
run mount "${sda}2" /mnt/plain
run mkdir /mnt/plain/sub
run mount --bind /mnt/plain/sub /mnt/bind
run mkswap -q "${sdb}2"
run swapon --discard "${sdb}2"
run mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$vdx"
run mount "$vdx" /mnt/vblk
for m in /mnt/root /mnt/vblk; do
    log "$m mounted with: $(findmnt -no OPTIONS "$m") (no 'discard': deleting frees nothing yet)"
done
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
