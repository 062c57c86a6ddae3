#!/bin/bash
# stranded-space -- guest side of issue 19's stranded-space benchmark (host:
# tests/bench/stranded-space-vm.sh, which prints the table; not in CI). The
# workload and the arithmetic are tests/bench/stranded-space-lib.sh, the ones
# the loop-image run uses; this file only says how the guest lays out the
# disk, reads the qcow2 and runs thintrimd.
#
# The host's on-mark hook (tests/bench/stranded-space-hook.sh) answers the
# first mark, stranded-setup, with /trimtest/stranded.env (the BENCH_*
# settings of the host's environment) and a hard link to trimdata0's qcow2 in
# the share, /trimtest/stranded-data0.qcow2: its st_blocks over 9p (uncached)
# are the host's allocation at that moment, so each sample reads the qcow2's
# allocated bytes and both filesystems' used blocks together, without a mark
# (a mark holds the scenario for about a second, more while a step writes).
#
# Per filesystem type (BENCH_FS) and config (BENCH_CONFIGS), on trimdata0 (4
# GiB qcow2, discard=unmap) discarded whole and partitioned afresh: p1 1 GiB
# ext4 (/mnt/fg, fio's 512 MiB file written in full), p2 the rest, the type
# under test (/mnt/bg, trimmed before the run). none and discard run with
# thintrimd stopped (discard: p2 mounted -o discard); old and new under the
# installed unit, with a drop-in 60-stranded.conf (stranded_thintrim_config:
# Include=/mnt/bg, the old settings or BENCH_NEW_CONFIG; plus BootDelay=0, as
# on a machine up for longer than its BootDelay), a restart and one `thintrim
# trim /mnt/bg` (a daemon that ran before). Marks FS-CONFIG-start and
# FS-CONFIG-end around each run.
#
# Then the backup copy: thintrimd back on the stock configuration (with the
# quiet drop-in), the disk afresh with ext4 on both partitions,
# BENCH_BACKUP_MIB (1024) MiB written to /mnt/bg and deleted, nothing
# trimmed; marks backup-deleted (the host copies the qcow2), backup-hook (the
# host runs the vzdump hook, which asks this guest's agent to trim) and
# backup-trimmed (the host copies it again).
#
# Out: stranded-results.tsv (the lib's rows), stranded-FS-CONFIG.samples,
# .fio.json; results stranded.kernel, stranded.fio, stranded.seconds,
# backup.used_bytes.
#
# vm-disks:            (none extra)
# vm-share: tests/bench/stranded-space-lib.sh
. /trimtest/guest/lib.sh
# shellcheck source=tests/bench/stranded-space-lib.sh
. /trimtest/guest/stranded-space-lib.sh

require_thintrim
save_journal_on_exit
tt_quiet_schedule

mark stranded-setup
[ -r /trimtest/stranded.env ] || die "the host's hook wrote no /trimtest/stranded.env (see on-mark.log)"
# shellcheck source=/dev/null
. /trimtest/stranded.env
stranded_check_params
image=/trimtest/stranded-data0.qcow2
[ -f "$image" ] || die "the host's hook linked no $image (see on-mark.log)"
disk=$(disk_by_serial trimdata0)
dir=/var/tmp/stranded
dropin=/etc/thintrim/thintrim.conf.d/60-stranded.conf
quiet=/etc/thintrim/thintrim.conf.d/40-vm-quiet.conf
quiet_text=$(cat "$quiet")
STRANDED_FG=/mnt/fg STRANDED_BG=/mnt/bg
run mkdir -p "$dir" "$STRANDED_FG" "$STRANDED_BG"

# An 8 MiB random seed repeated: incompressible to any compressor with a
# smaller window, and /dev/urandom is slow under TCG.
seed=$dir/seed
run head -c 8388608 /dev/urandom >"$seed"
stranded_fill() {
    local i
    {
        for ((i = 0; i < $2 / 8; i++)); do cat "$seed"; done
        head -c $(($2 % 8 * 1048576)) "$seed"
    } >"$1"
}
stranded_alloc() {
    local blocks unit
    read -r blocks unit < <(stat -c '%b %B' -- "$image")
    echo $((blocks * unit))
}

# fresh_disk FSTYPE BG_OPTS: trimdata0 discarded whole, partitioned and made
# again, both filesystems mounted, fio's file written, p2 trimmed.
fresh_disk() {
    local fs=$1 opts=$2
    mountpoint -q "$STRANDED_FG" && run umount "$STRANDED_FG"
    mountpoint -q "$STRANDED_BG" && run umount "$STRANDED_BG"
    run blkdiscard -f "$disk"
    run_stdin sfdisk --quiet --wipe always "$disk" <<'PARTS'
label: gpt
size=1GiB
size=+
PARTS
    run udevadm settle
    # Inode tables and journal written now: no lazy-init thread writes in
    # the background of a run.
    run mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "${disk}1"
    case $fs in
    ext4) run mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "${disk}2" ;;
    xfs) run mkfs.xfs -q -f -K "${disk}2" ;;
    btrfs) run mkfs.btrfs -q -f -K "${disk}2" ;;
    *) die "BENCH_FS: $fs is not one of ext4, xfs, btrfs" ;;
    esac
    run mount -o nodiscard "${disk}1" "$STRANDED_FG"
    run mount -o "$opts" "${disk}2" "$STRANDED_BG"
    # Written in full first: fio's writes then allocate nothing.
    stranded_fill "$STRANDED_FG/fio.dat" 512
    run fstrim "$STRANDED_BG"
    sync
}

# thintrimd with DROPIN_TEXT as 60-stranded.conf, or stopped without one.
set_daemon() {
    if [ -z "$1" ]; then
        run systemctl stop thintrimd
        run rm -f "$dropin"
        return
    fi
    run rm -f "$quiet"
    printf '%s\n' "$1" | run_stdin tee "$dropin" >/dev/null
    run systemctl restart thintrimd
}

run_one() {
    local fs=$1 cfg=$2 name=$1-$2 opts=nodiscard obj before trims=-
    [ "$cfg" != discard ] || opts=discard
    set_daemon ""
    fresh_disk "$fs" "$opts"
    if [ "$cfg" = old ] || [ "$cfg" = new ]; then
        # BootDelay=0: the loop run's host has been up for hours; a guest
        # just booted would hold scheduled trims for the stock 5 min.
        set_daemon "$(stranded_thintrim_config "$cfg" "$STRANDED_BG"; echo BootDelay=0)"
        obj=$(tt_fs_object "$STRANDED_BG")
        run thintrim trim "$STRANDED_BG"
        before=$(tt_get "$obj" "$TT_FS" TrimCount)
    fi
    mark "$name-start"
    log "stranded: $name for $STRANDED_MINUTES min"
    stranded_workload "$dir/$name" || die "the $name run failed"
    [ -z "${obj:-}" ] || trims=$(($(tt_get "$obj" "$TT_FS" TrimCount) - before))
    mark "$name-end"
    stranded_row "$fs" "$cfg" "$dir/$name" "$trims" >>"$THINTRIM_VM_OUT/stranded-results.tsv"
    log "stranded: $(tail -n1 "$THINTRIM_VM_OUT/stranded-results.tsv")"
    cp "$dir/$name.samples" "$dir/$name.fio.json" "$THINTRIM_VM_OUT/"
    mv "$THINTRIM_VM_OUT/$name.samples" "$THINTRIM_VM_OUT/stranded-$name.samples"
    mv "$THINTRIM_VM_OUT/$name.fio.json" "$THINTRIM_VM_OUT/stranded-$name.fio.json"
}

result stranded.kernel "$(uname -r)"
result stranded.fio "$(fio --version)"
: >"$THINTRIM_VM_OUT/stranded-results.tsv"
start=$SECONDS
for fs in "${STRANDED_FSTYPES[@]}"; do
    for cfg in "${STRANDED_CONFIGS[@]}"; do
        run_one "$fs" "$cfg"
    done
done
result stranded.seconds $((SECONDS - start))

# The backup copy: deleted space that nothing trimmed, then the vzdump hook.
backup_mib=${BENCH_BACKUP_MIB:-1024}
if [[ ! $backup_mib =~ ^[1-9][0-9]*$ ]] || ((backup_mib > 2560)); then
    die "BENCH_BACKUP_MIB: a whole number of MiB from 1 to 2560 (p2 holds 3 GiB), not '$backup_mib'"
fi
set_daemon ""
fresh_disk ext4 nodiscard
printf '%s\n' "$quiet_text" | run_stdin tee "$quiet" >/dev/null
run systemctl start thintrimd
tt_fs_object "$STRANDED_BG" >/dev/null
stranded_fill "$STRANDED_BG/backup-fill" "$backup_mib"
sync
run rm "$STRANDED_BG/backup-fill"
sleep 6 # ext4 frees the blocks at its next journal commit
result backup.used_bytes $(($(stranded_used_bytes "$STRANDED_FG") + $(stranded_used_bytes "$STRANDED_BG")))
result backup.mib "$backup_mib"
mark backup-deleted
mark backup-hook
mark backup-trimmed
mark stranded-done
