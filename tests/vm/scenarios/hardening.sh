#!/bin/bash
# hardening -- guest side of vm-hardening (host: tests/vm/test-hardening.sh),
# issue 10: what real guests throw at the daemon, under the real hardened
# thintrimd.service. One boot; one section per topic, each a function below
# between its "=== section" and "=== end section" lines, run in the order of
# the list at the bottom. A section records results with `result` under its
# own prefix (f2fs.*, polkit.*, ...) and marks under its own names, and the
# host test asserts on them in a section of its own.
#
#   f2fs     f2fs on trimdata1, mounted before thintrimd starts (so the
#            sandbox's ProtectSystem=strict view of it is read-only, the case
#            f2fs's FITRIM refuses with EROFS): 256 MiB written and deleted,
#            `thintrim trim` succeeds with bytes and the qcow2 shrinks;
#            `thintrim status` names it among those trimmed in one call.
#            Marks f2fs-base, f2fs-written, f2fs-deleted, f2fs-trimmed.
#   polkit   ext4 on trimvblk0; polkitd (installed, not running: thintrimd's
#            check starts it) with a rules file granting the user ttadmin
#            org.thintrim.ThinTrim1.manage: ttadmin's `thintrim trim` works,
#            ttuser's is AccessDenied with a sentence saying what to do, with
#            and without --no-ask-password.
#   automount-removable   an ext4 behind x-systemd.automount at /mnt/auto:
#            left untriggered by thintrim ("not mounted now"), managed once
#            mounted (list, stack, trim); an ext4 at /media/usb ("mounted by a
#            user") and a scsi_debug disk with removable=1 at /mnt/stick
#            ("removable"), both managed after UserMedia=yes. Loop files only.
#
# Disks: f2fs uses trimdata1, polkit trimvblk0; trimdata0 is left to the
# automount/removable section (which uses loop files instead).
#
# vm-disks:            (none extra)
. /trimtest/guest/lib.sh

require_thintrim
save_journal_on_exit
tt_quiet_schedule

# === section f2fs ==============================================================
section_f2fs() {
    local dev mnt=/mnt/f2fs obj pid view rc=0 mib=256 status
    dev=$(disk_by_serial trimdata1)
    # No discard at mkfs (-t 0) nor online (nodiscard): only the trim frees.
    run mkfs.f2fs -q -f -t 0 "$dev"
    run mkdir -p "$mnt"
    run mount -t f2fs -o nodiscard "$dev" "$mnt"
    # Mounted before thintrimd starts: the sandbox's ProtectSystem=strict
    # makes the daemon's view of it read-only, the case f2fs's FITRIM
    # refuses with EROFS.
    run systemctl restart thintrimd
    pid=$(systemctl show -p MainPID --value thintrimd)
    view=$(awk -v m="$mnt" '$5 == m {split($6, o, ","); print o[1]}' "/proc/$pid/mountinfo")
    result f2fs.daemon_view "$view"
    result f2fs.exposure "$(systemd-analyze security thintrimd 2>/dev/null |
        sed -n 's/.*Overall exposure level for thintrimd.service: \([0-9.]*\).*/\1/p')"
    obj=$(tt_fs_object "$mnt")
    result f2fs.eligible "$(tt_get "$obj" "$TT_FS" Eligible)"
    mark f2fs-base
    run dd if=/dev/zero of="$mnt/blob" bs=1M count="$mib" conv=fsync status=none
    result f2fs.written_bytes $((mib << 20))
    mark f2fs-written
    run rm "$mnt/blob"
    run sync -f "$mnt"
    mark f2fs-deleted
    bus thintrim trim "$mnt" || rc=$?
    result f2fs.cli_rc "$rc"
    result f2fs.LastTrimResult "$(tt_get "$obj" "$TT_FS" LastTrimResult)"
    result f2fs.LastTrimmedBytes "$(tt_get "$obj" "$TT_FS" LastTrimmedBytes)"
    result f2fs.LastTrimMessage "$(tt_get "$obj" "$TT_FS" LastTrimMessage)"
    # f2fs is trimmed in one FITRIM call: status says so (cancel, pacing).
    status=$(bus thintrim status) || true
    result f2fs.status_one_call "$(grep '^Trimmed in one call' <<<"$status" || true)"
    mark f2fs-trimmed
}
# === end section f2fs ==========================================================

# === section polkit ============================================================
section_polkit() {
    local dev mnt=/mnt/polkit obj rc out
    dev=$(disk_by_serial trimvblk0)
    run mkfs.ext4 -q -F -E nodiscard "$dev"
    run mkdir -p "$mnt"
    run mount -o nodiscard "$dev" "$mnt"
    obj=$(tt_fs_object "$mnt")
    run useradd --no-create-home --shell /bin/bash ttadmin
    run useradd --no-create-home --shell /bin/bash ttuser
    # What an administrator writes to let a group of people trim without a
    # password (thintrimd(8), AUTHORIZATION).
    run mkdir -p /etc/polkit-1/rules.d
    run_stdin tee /etc/polkit-1/rules.d/50-thintrim-test.rules <<'RULES' >/dev/null
polkit.addRule(function(action, subject) {
    if (action.id == "org.thintrim.ThinTrim1.manage" && subject.user == "ttadmin")
        return polkit.Result.YES;
});
RULES
    # polkitd is not running yet: thintrimd's first CheckAuthorization starts it.
    result polkit.running_before "$(systemctl is-active polkit 2>/dev/null || true)"
    rc=0
    bus runuser -u ttadmin -- thintrim trim "$mnt" || rc=$?
    result polkit.admin_rc "$rc"
    result polkit.admin_LastTrimResult "$(tt_get "$obj" "$TT_FS" LastTrimResult)"
    rc=0
    out=$(bus runuser -u ttuser -- thintrim trim "$mnt") || rc=$?
    result polkit.user_rc "$rc"
    result polkit.user_message "$(printf '%s' "$out" | tr '\t\n' '  ')"
    rc=0
    out=$(bus runuser -u ttuser -- thintrim trim --no-ask-password "$mnt") || rc=$?
    result polkit.user_noask_rc "$rc"
    result polkit.user_noask_message "$(printf '%s' "$out" | tr '\t\n' '  ')"
    result polkit.TrimCount "$(tt_get "$obj" "$TT_FS" TrimCount)"
}
# === end section polkit ========================================================

# === section automount-removable ===============================================
# Loop-backed ext4 filesystems (no extra disk): one behind an automount, one
# mounted where udisks mounts for users, and a scsi_debug disk the kernel
# calls removable. Records what `thintrim list --all` says of each, whether
# the automount was left untriggered, and the managed set after
# UserMedia=yes.
am_fstype_at() { awk -v m="$1" '$5 == m {printf "%s ", $(NF - 2)}' /proc/self/mountinfo; }
am_list_line() { thintrim list --all 2>/dev/null | awk -v m="$1" '$1 == m' | head -1; }
am_object() { busctl call "$TT_DEST" "$TT_ROOT" "$TT_MGR" GetFilesystem s "$1" >/dev/null 2>&1 && echo yes || echo no; }

section_automount_removable() {
    local auto_dev media_dev stick
    log "section automount-removable"
    run truncate -s 128M /var/tmp/auto.img /var/tmp/media.img
    run mkfs.ext4 -q -F /var/tmp/auto.img
    run mkfs.ext4 -q -F /var/tmp/media.img
    auto_dev=$(losetup -f --show /var/tmp/auto.img)
    media_dev=$(losetup -f --show /var/tmp/media.img)
    run mkdir -p /mnt/auto /media/usb

    # --- automount: x-systemd.automount, untriggered, then triggered
    echo "$auto_dev /mnt/auto ext4 noauto,x-systemd.automount 0 0" >>/etc/fstab
    run systemctl daemon-reload
    run systemctl start mnt-auto.automount
    result automount.before "$(am_fstype_at /mnt/auto)"
    result automount.idle_list "$(am_list_line /mnt/auto)"
    result automount.idle_object "$(am_object /mnt/auto)"
    sleep 1 # the daemon has seen the automount appear and read the table
    result automount.untriggered "$(am_fstype_at /mnt/auto)"
    run ls /mnt/auto >/dev/null # the first access mounts it
    result automount.after "$(am_fstype_at /mnt/auto)"
    tt_fs_object /mnt/auto 10 >/dev/null
    result automount.object yes
    result automount.stack "$(thintrim stack /mnt/auto 2>&1 | head -1)"
    result automount.list "$(am_list_line /mnt/auto)"
    result automount.trim_rc "$(thintrim trim /mnt/auto >/dev/null 2>&1; echo $?)"

    # --- logind's sleep delay lock: held while a (rate-limited) trim runs, gone after
    run dd if=/dev/zero of=/mnt/auto/fill bs=1M count=64 status=none
    run rm /mnt/auto/fill
    sync
    thintrim trim --no-wait --rate 8M/s /mnt/auto >/dev/null 2>&1
    sleep 2
    result inhibit.during "$(systemd-inhibit --list --no-legend 2>&1 | grep thintrim | tr -s ' ')"
    for _ in $(seq 60); do
        [ "$(busctl get-property "$TT_DEST" "$TT_ROOT" "$TT_MGR" State)" = 's "idle"' ] && break
        sleep 0.5
    done
    result inhibit.after "$(systemd-inhibit --list --no-legend 2>&1 | grep thintrim | tr -s ' ')"

    # --- user mount: under /media, not in fstab
    run mount "$media_dev" /media/usb
    sleep 1
    result usermount.list "$(am_list_line /media/usb)"
    result usermount.object "$(am_object /media/usb)"

    # --- removable: scsi_debug's disk with removable=1, mounted where the
    # system would mount it
    stick=
    if modprobe scsi_debug removable=1 dev_size_mb=64 lbpu=1 2>/dev/null; then
        for _ in $(seq 50); do
            stick=$(lsblk -dn -o NAME,MODEL | awk '$2 == "scsi_debug" {print "/dev/" $1; exit}')
            [ -n "$stick" ] && break
            sleep 0.2
        done
    fi
    if [ -n "$stick" ]; then
        run mkfs.ext4 -q -F "$stick"
        run mkdir -p /mnt/stick
        run mount "$stick" /mnt/stick
        sleep 1
        result removable.sysfs "$(cat "/sys/block/${stick#/dev/}/removable")"
        result removable.list "$(am_list_line /mnt/stick)"
        result removable.object "$(am_object /mnt/stick)"
    else
        result removable.sysfs unavailable
    fi

    # --- UserMedia=yes: both are managed
    run mkdir -p /etc/thintrim/thintrim.conf.d
    printf '[Filesystems]\nUserMedia=yes\n' >/etc/thintrim/thintrim.conf.d/50-user-media.conf
    run thintrim reload
    tt_fs_object /media/usb 10 >/dev/null
    result usermount.optin_object yes
    if [ -n "$stick" ]; then
        tt_fs_object /mnt/stick 10 >/dev/null
        result removable.optin_object yes
        run umount /mnt/stick
    fi
    run rm /etc/thintrim/thintrim.conf.d/50-user-media.conf
    run umount /media/usb /mnt/auto
    run systemctl stop mnt-auto.automount
    losetup -d "$auto_dev" "$media_dev"
}
# === end section automount-removable ===========================================

section_f2fs
section_polkit
section_automount_removable
log "hardening: every section ran"
