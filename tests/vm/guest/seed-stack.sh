# seed-stack.sh -- sourced by guest scenarios after lib.sh: builds the seed
# shellcheck shell=bash
# stack, the layout of tests/fixtures/seed-stack.tar.gz, on the harness's
# data disks:
#
#   trimdata0/1 (scsi-hd, discard=unmap) -> sdX1 -> md0 raid1 (--assume-clean)
#     -> LUKS2 "seedcrypt" (--allow-discards, pbkdf2 1000 iterations, key in
#        /run/seed.key) -> LVM vgseed -> root (ext4, 1G, /mnt/root),
#                                        data (xfs, the rest, /mnt/data)
#   sda2 ext4 (/mnt/plain) + a bind mount of /mnt/plain/sub on /mnt/bind,
#   swap on sdb2 with --discard,
#   trimvblk0 (virtio-blk, the second bus) -> vdX1 ext4 (/mnt/vblk).
#
# No filesystem is mounted with -o discard: deleting frees nothing on the disk
# until something trims. ext4 with lazy_itable_init=0: no ext4lazyinit thread
# writing inode tables between marks.
#
#   build_seed_stack      sets sda sdb vdx (the disks) and builds everything
#   reopen_seed_crypt [--allow-discards]
#                         unmounts /mnt/root and /mnt/data, closes and reopens
#                         seedcrypt (with the given cryptsetup open options),
#                         mounts them again

build_seed_stack() {
    sda=$(disk_by_serial trimdata0)
    sdb=$(disk_by_serial trimdata1)
    vdx=$(disk_by_serial trimvblk0)
    log "data disks: trimdata0=$sda trimdata1=$sdb trimvblk0=$vdx"
    local d n
    for d in "$sda" "$sdb"; do
        n=${d#/dev/}
        log "$n: provisioning_mode=$(cat /sys/block/"$n"/device/scsi_disk/*/provisioning_mode)" \
            "discard_max_bytes=$(cat /sys/block/"$n"/queue/discard_max_bytes)"
    done
    {
        echo "# scenario $THINTRIM_VM_SCENARIO -- commands run in the guest, in order ($(uname -r))"
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
    run_stdin sfdisk -q -W always "$vdx" <<EOF
label: gpt
type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=vblk
EOF
    run udevadm settle
    vdx1=$(lsblk -nrpo NAME "$vdx" | sed -n 2p)
    [ -b "$vdx1" ] || die "no partition on $vdx"
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
    run mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$vdx1"
    run mount "$vdx1" /mnt/vblk
    for m in /mnt/root /mnt/data /mnt/vblk; do
        log "$m mounted with: $(findmnt -no OPTIONS "$m") (no 'discard': deleting frees nothing yet)"
    done
}

reopen_seed_crypt() {
    local m
    for m in /mnt/root /mnt/data; do
        if ! run umount "$m"; then
            log "umount $m failed; who holds it:"
            fuser -vm "$m" 2>&1 || true
            result "umount_busy.$m" 1
            run umount -l "$m"
        fi
    done
    run vgchange -q -an vgseed
    run cryptsetup close seedcrypt
    run cryptsetup open "$@" --key-file /run/seed.key /dev/md0 seedcrypt
    run vgchange -q -ay vgseed
    run udevadm settle
    run mount /dev/vgseed/root /mnt/root
    run mount /dev/vgseed/data /mnt/data
    log "seedcrypt reopened ($*): $(dmsetup table seedcrypt | sed 's/ [0-9a-f]\{64\} / KEY /')"
}
