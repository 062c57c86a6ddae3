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
#            `thintrim trim` succeeds with bytes and the qcow2 shrinks.
#            Marks f2fs-base, f2fs-written, f2fs-deleted, f2fs-trimmed.
#   polkit   ext4 on trimvblk0; polkitd (installed, not running: thintrimd's
#            check starts it) with a rules file granting the user ttadmin
#            org.thintrim.ThinTrim1.manage: ttadmin's `thintrim trim` works,
#            ttuser's is AccessDenied with a sentence saying what to do, with
#            and without --no-ask-password.
#
# Disks: f2fs uses trimdata1, polkit trimvblk0; trimdata0 is left to the
# automount/removable section.
#   automount, removable   (the scale helper's section)
#
# vm-disks:            (none extra)
. /trimtest/guest/lib.sh

require_thintrim
save_journal_on_exit
tt_quiet_schedule

# === section f2fs ==============================================================
section_f2fs() {
    local dev mnt=/mnt/f2fs obj pid view rc=0 mib=256
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
section_automount_removable() {
    log "section automount-removable: (filled in by the scale helper)"
}
# === end section automount-removable ===========================================

section_f2fs
section_polkit
section_automount_removable
log "hardening: every section ran"
