#!/bin/bash
# thintrim-stack -- guest side of vm-thintrim-stack (host side:
# tests/vm/test-thintrim-stack.sh). The installed thintrim .deb on the seed
# stack (guest/seed-stack.sh: 2 x scsi-hd qcow2 -> md raid1 -> LUKS2 -> LVM ->
# ext4 + xfs, an ext4 partition on virtio-blk, ...), driven the way a user
# drives it: systemctl, busctl, thintrim. Seven parts in one boot (a TCG boot
# costs a minute):
#
#  A  manual trim over D-Bus. Marks base, written (600 MiB in /mnt/root),
#     deleted, trimmed (after `busctl call ... Manager Trim asa{sv} 1
#     /mnt/root 0` and polling the filesystem's LastTrimStarted/Finished).
#     Results: trim.root.* (job, LastTrimmedBytes, LastTrimResult, ...).
#  B  the schedule, no manual call: a drop-in with Interval=1min,
#     RandomizedDelay=0, BootDelay=0, daemon restarted. The never-trimmed
#     /mnt/vblk (ext4 partition) and /mnt/data (xfs LV) are trimmed at once
#     (sched1.*); then marks sched-base, sched-written (200 MiB in each),
#     sched-deleted, and sched-trimmed once a trim of each that started after
#     the deletion has finished (the next Interval). Results: sched2.*.
#     The drop-in is then removed and the daemon reloaded (systemctl reload:
#     the unit's ExecReload= is a busctl call).
#  C  the sysfs capture of the stack (out/seed-stack.tar.gz, fixture format),
#     plus `thintrim status/list/stack` in the transcript.
#  D  LUKS reopened WITHOUT --allow-discards: /mnt/root's Eligible and Reason,
#     a Trim over busctl (refused), `thintrim trim /mnt/root` and
#     `thintrim trim --all`. Marks nodisc-base, nodisc-written (300 MiB in
#     /mnt/root), nodisc-trimmed (deleted, then `thintrim trim --all`).
#  E  the doctor: an /etc/crypttab line for seedcrypt without `discard` and
#     fstrim.timer enabled: `thintrim doctor [--json]` and Manager.Diagnose;
#     then `thintrim doctor --json` without a system bus (source "local"),
#     and with the daemon stopped and masked (D-Bus cannot start it). A
#     baseline doctor run is taken in part A (healthy stack, fstrim.timer
#     masked).
#  F  the doctor's fix without a remount (`cryptsetup refresh
#     --allow-discards`; the LVs above keep their old limits until their
#     tables are reloaded: `lvchange --refresh` does not, `dmsetup reload`
#     does): does the daemon see /mnt/root
#     eligible again (within 20 s, else after a reload, else after a
#     restart)? Then `thintrim trim /mnt/root`; mark refreshed (the 300 MiB
#     of part D freed at last).
#  G  md0 degraded (one member failed and removed), Interval=1min: the
#     scheduled trim of /mnt/data is deferred with the reason (LastTrimMessage,
#     `thintrim status`, the journal), /mnt/vblk is trimmed, and `thintrim
#     trim /mnt/data` runs.
#
# Outside the marks no scheduled trim may run: the drop-in 40-vm-quiet.conf
# sets BootDelay=1h, so the schedule stays idle except in part B.
#
# Everything a user would type and its output goes to out/transcript.txt;
# JSON copies of what the host asserts on to out/*.json; the daemon's journal
# to out/thintrimd.journal.
#
# vm-disks:            (no extra disks)
. /trimtest/guest/lib.sh
. /trimtest/guest/seed-stack.sh
require_thintrim
save_journal_on_exit

out=$THINTRIM_VM_OUT
root_mib=600
sched_mib=200
nodisc_mib=300

# rc_of CMD...: run CMD through `bus`, print nothing, set $rc (never fails).
rc_of() { rc=0; bus "$@" >/dev/null || rc=$?; }
# json NAME CMD...: CMD's stdout to out/NAME (stderr to out/NAME.err), $rc set.
json() {
    local name=$1
    shift
    printf '%s > %s\n' "$*" "$name" >>"$THINTRIM_VM_OUT/commands.txt"
    rc=0
    "$@" >"$out/$name" 2>"$out/$name.err" || rc=$?
    log "$* -> out/$name (exit $rc)"
}

# --- the guest and the package as installed --------------------------------
# What the host checks the release against (the test proves a given release).
result guest.release "$THINTRIM_VM_RELEASE"
result guest.version_id "$(. /etc/os-release && echo "$VERSION_ID")"
result guest.kernel "$(uname -r)"
result guest.systemd "$(systemctl --version | awk 'NR == 1 {print $2}')"
result installed.enabled "$(systemctl is-enabled thintrimd 2>&1 || true)"
result installed.active "$(systemctl is-active thintrimd 2>&1 || true)"
bus thintrim --version

build_seed_stack

# No schedule while we measure (part B turns it on for itself). dpkg -i has
# enabled and started the daemon already; then as a user would.
tt_quiet_schedule
bus systemctl enable --now thintrimd
bus busctl tree org.thintrim.ThinTrim1
# The root filesystem (/dev/vda) must be managed as "/", the mount point a
# user knows (in the unit's namespace it is also bind-mounted on /tmp and
# /var/tmp by PrivateTmp=yes).
rc_of busctl call org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager GetFilesystem s /
result rootfs.getfilesystem_rc "$rc"
busctl --list tree "$TT_DEST" >"$out/tree.txt" || true

# ============================ A: manual trim ================================
root_obj=$(tt_fs_object /mnt/root)
result root.object "$root_obj"
bus busctl call org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager GetFilesystem s /mnt/root
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem Eligible Reason LastTrimResult
result root.eligible "$(tt_get "$root_obj" "$TT_FS" Eligible)"
json doctor-before.json thintrim doctor --json
result doctor_before.rc "$rc"

mark base
t0=$(date +%s.%N)
run dd if=/dev/zero of=/mnt/root/fill bs=1M count=$root_mib conv=fsync status=none
result written_bytes.root $((root_mib << 20))
result write_seconds.root "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
mark written
run rm /mnt/root/fill
mark deleted

since=$(now_us)
job=$(bus busctl call org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager Trim 'asa{sv}' 1 /mnt/root 0)
result trim.root.job "${job#t }"
tt_wait_trim "$root_obj" "$since" 300
tt_wait_idle 120
mark trimmed
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem LastTrimmedBytes
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem LastTrimResult
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem LastTrimDuration LastTrimMessage TrimCount
bus busctl get-property org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager State LastRunResult LastRunTrimmedBytes
for p in LastTrimmedBytes LastTrimResult LastTrimDuration LastTrimMessage TrimCount LastTrimStarted LastTrimFinished; do
    result "trim.root.$p" "$(tt_get "$root_obj" "$TT_FS" "$p")"
done
result trim.root.since "$since"
json root-after-trim.json busctl --json=short call "$TT_DEST" "$root_obj" org.freedesktop.DBus.Properties GetAll s "$TT_FS"

# ============================ B: the schedule ===============================
tt_wait_idle 120
run_stdin tee /etc/thintrim/thintrim.conf.d/50-test.conf <<'EOF' >/dev/null
# thintrim VM test: trim every minute, no spread, no boot delay.
[Schedule]
Interval=1min
RandomizedDelay=0
BootDelay=0
EOF
vblk_obj=$(tt_fs_object /mnt/vblk)
data_obj=$(tt_fs_object /mnt/data)
result vblk.object "$vblk_obj"
result data.object "$data_obj"
for o in "$vblk_obj" "$data_obj"; do
    [ "$(tt_get "$o" "$TT_FS" LastTrimResult)" = never ] || die "$o was trimmed before part B"
done
restart=$(now_us)
bus systemctl restart thintrimd
bus busctl get-property org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager Interval NextScheduledTrim
result sched.interval "$(tt_get "$TT_ROOT" "$TT_MGR" Interval)"
# Round 1: never trimmed, BootDelay=0 -> due at once.
tt_wait_trim "$vblk_obj" "$restart" 120
tt_wait_trim "$data_obj" "$restart" 120
for m in vblk data; do
    o=${m}_obj
    for p in LastTrimResult LastTrimmedBytes LastTrimStarted; do
        result "sched1.$m.$p" "$(tt_get "${!o}" "$TT_FS" "$p")"
    done
done
result sched1.restart "$restart"

mark sched-base
t0=$(date +%s.%N)
run dd if=/dev/zero of=/mnt/vblk/fill bs=1M count=$sched_mib conv=fsync status=none
run dd if=/dev/zero of=/mnt/data/fill bs=1M count=$sched_mib conv=fsync status=none
result written_bytes.sched $((sched_mib << 20))
result write_seconds.sched "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
mark sched-written
run rm /mnt/vblk/fill /mnt/data/fill
mark sched-deleted
deleted_at=$(now_us)
result sched2.deleted_at "$deleted_at"
# No manual call: the next Interval trims both.
tt_wait_trim "$vblk_obj" "$deleted_at" 240
tt_wait_trim "$data_obj" "$deleted_at" 240
mark sched-trimmed
bus busctl get-property org.thintrim.ThinTrim1 "$vblk_obj" org.thintrim.ThinTrim1.Filesystem LastTrimResult LastTrimmedBytes TrimCount NextScheduledTrim
bus busctl get-property org.thintrim.ThinTrim1 "$data_obj" org.thintrim.ThinTrim1.Filesystem LastTrimResult LastTrimmedBytes TrimCount NextScheduledTrim
for m in vblk data; do
    o=${m}_obj
    for p in LastTrimResult LastTrimmedBytes LastTrimStarted LastTrimFinished TrimCount; do
        result "sched2.$m.$p" "$(tt_get "${!o}" "$TT_FS" "$p")"
    done
done
bus journalctl -u thintrimd --no-pager -o cat -n 14 || true

# Back to no schedule, with a reload (ExecReload= calls Manager.Reload).
run rm /etc/thintrim/thintrim.conf.d/50-test.conf
rc_of systemctl reload thintrimd
result reload.rc "$rc"
if [ "$rc" != 0 ]; then
    log "systemctl reload thintrimd failed ($rc): restarting instead"
    run systemctl restart thintrimd
fi
bus busctl get-property org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager Interval
result reload.interval "$(tt_get "$TT_ROOT" "$TT_MGR" Interval)"
tt_wait_idle 180

# ============================ C: capture, CLI views =========================
bus thintrim status || true
bus thintrim list --all || true
bus thintrim stack /mnt/root || true
capture seed-stack

# ====================== D: dm-crypt without discards ========================
tt_wait_idle 120
reopen_seed_crypt
# The daemon sees the new mount (new dm devices) and judges it again.
for _ in $(seq 60); do
    root_obj=$(tt_fs_object /mnt/root)
    [ "$(tt_get "$root_obj" "$TT_FS" Eligible || true)" = false ] && break
    sleep 0.5
done
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem Eligible
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem Reason
result nodisc.root.eligible "$(tt_get "$root_obj" "$TT_FS" Eligible)"
json nodisc-root-reason.json busctl --json=short get-property "$TT_DEST" "$root_obj" "$TT_FS" Reason
json nodisc-root-stack.json busctl --json=short get-property "$TT_DEST" "$root_obj" "$TT_FS" Stack
rc_of busctl call org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager Trim 'asa{sv}' 1 /mnt/root 0
result nodisc.busctl_trim.rc "$rc"
json nodisc-busctl-trim.txt busctl call "$TT_DEST" "$TT_ROOT" "$TT_MGR" Trim 'asa{sv}' 1 /mnt/root 0
rc_of thintrim trim /mnt/root
result nodisc.cli_trim.rc "$rc"

mark nodisc-base
run dd if=/dev/zero of=/mnt/root/fill bs=1M count=$nodisc_mib conv=fsync status=none
result written_bytes.nodisc $((nodisc_mib << 20))
mark nodisc-written
run rm /mnt/root/fill
sync
rc_of thintrim trim --all
result nodisc.cli_trim_all.rc "$rc"
tt_wait_idle 120
mark nodisc-trimmed
result nodisc.root.LastTrimResult "$(tt_get "$root_obj" "$TT_FS" LastTrimResult)"

# ============================ E: the doctor =================================
luks_uuid=$(cryptsetup luksUUID /dev/md0)
run_stdin tee /etc/crypttab <<EOF >/dev/null
# <target name> <source device> <key file> <options>   (thintrim VM test)
seedcrypt UUID=$luks_uuid /run/seed.key luks
EOF
result crypttab.name seedcrypt
result crypttab.line 2
run systemctl unmask fstrim.timer fstrim.service
run systemctl enable --now fstrim.timer
result fstrim_timer.enabled "$(systemctl is-enabled fstrim.timer 2>&1 || true)"
rc_of thintrim doctor
result doctor.text_rc "$rc"
json doctor.json thintrim doctor --json
result doctor.rc "$rc"
bus busctl call org.thintrim.ThinTrim1 /org/thintrim/ThinTrim1 org.thintrim.ThinTrim1.Manager Diagnose || true
json diagnose.json busctl --json=short call "$TT_DEST" "$TT_ROOT" "$TT_MGR" Diagnose
result diagnose.rc "$rc"

# Without the daemon. (1) No system bus at all: the CLI must read the system
# itself. (2) After part F: the daemon stopped and masked, so that D-Bus
# activation fails: the same is expected.
json doctor-local.json env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/thintrim-vm-no-bus thintrim doctor --json
result doctor_local.rc "$rc"

# ================ F: the doctor's fix, without a remount =====================
# The hint says `cryptsetup refresh --allow-discards seedcrypt`: the mount
# stays, only dm tables change (seedcrypt's, then the LVs' with `lvchange
# --refresh`). Does the daemon judge /mnt/root again?
dmax() { cat "/sys/block/$(basename "$(readlink -f "/dev/mapper/$1")")/queue/discard_max_bytes"; }
run cryptsetup refresh --allow-discards --key-file /run/seed.key seedcrypt
result refresh.crypt_max "$(dmax seedcrypt)"
result refresh.lv_max "$(dmax vgseed-root)"
# A dm device computes its queue limits when its table is loaded: the LVs on
# seedcrypt keep discard_max_bytes=0 until they are reloaded too. `lvchange
# --refresh` does not do it (the table is unchanged, LVM skips the reload);
# dmsetup reloads the same table.
run lvchange --refresh vgseed
result refresh.lv_max_after_lvchange "$(dmax vgseed-root)"
for lv in vgseed-root vgseed-data; do
    table=$(dmsetup table "$lv")
    run dmsetup reload "$lv" --table "$table"
    run dmsetup resume "$lv"
done
result refresh.lv_max_after_dmsetup "$(dmax vgseed-root)"
# No reload, no restart: a Trim request makes the daemon walk the stacks again.
rc_of thintrim trim /mnt/root
result refresh.cli_trim.rc "$rc"
tt_wait_idle 120
result refresh.eligible_after_trim "$(tt_get "$root_obj" "$TT_FS" Eligible || true)"
bus busctl get-property org.thintrim.ThinTrim1 "$root_obj" org.thintrim.ThinTrim1.Filesystem Eligible Reason || true
mark refreshed

run systemctl stop thintrimd
run systemctl mask --runtime thintrimd
json doctor-masked.json thintrim doctor --json
result doctor_masked.rc "$rc"
rc_of thintrim doctor

# ================ G: a degraded md array defers scheduled trims ===============
# One raid1 member failed and removed: the schedule (Interval=1min, due at
# once) defers /mnt/data, above md0, with the reason in LastTrimMessage and
# `thintrim status`, and trims /mnt/vblk (not on md0); `thintrim trim` of
# /mnt/data still runs.
run systemctl unmask --runtime thintrimd
member=/dev/$(ls /sys/block/md0/slaves | tail -n 1)
run mdadm /dev/md0 --fail "$member"
run mdadm /dev/md0 --remove "$member"
result degraded.md0 "$(cat /sys/block/md0/md/degraded)"
run_stdin tee /etc/thintrim/thintrim.conf.d/50-test.conf <<'EOF' >/dev/null
# thintrim VM test: everything due at once.
[Schedule]
Interval=1min
RandomizedDelay=0
BootDelay=0
EOF
since=$(now_us)
result degraded.since "$since"
bus systemctl restart thintrimd
data_obj=$(tt_fs_object /mnt/data)
for _ in $(seq 60); do
    [ "$(tt_get "$data_obj" "$TT_FS" LastTrimStarted || echo 0)" -ge "$since" ] && break
    sleep 1
done
for p in LastTrimResult LastTrimMessage LastTrimStarted; do
    result "degraded.data.$p" "$(tt_get "$data_obj" "$TT_FS" "$p" || true)"
done
tt_wait_trim "$(tt_fs_object /mnt/vblk)" "$since" 60
result degraded.vblk.LastTrimResult "$(tt_get "$(tt_fs_object /mnt/vblk)" "$TT_FS" LastTrimResult)"
json degraded-status.txt thintrim status
result degraded.status.rc "$rc"
result degraded.journal "$(journalctl -u thintrimd -o cat --since "@$((since / 1000000))" | grep -c "deferred: " || true)"
rc_of thintrim trim /mnt/data
result degraded.manual.rc "$rc"
result degraded.manual.LastTrimResult "$(tt_get "$data_obj" "$TT_FS" LastTrimResult)"
bus busctl get-property org.thintrim.ThinTrim1 "$data_obj" org.thintrim.ThinTrim1.Filesystem LastTrimResult LastTrimMessage || true
log "thintrim-stack done"
