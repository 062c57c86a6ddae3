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
#   polkit   polkitd with a rules file granting the user ttadmin
#            org.thintrim.ThinTrim1.manage: ttadmin's `thintrim trim` works,
#            ttuser's is AccessDenied with a sentence saying what to do.
#   automount, removable   (the scale helper's section)
#
# vm-disks:            (none extra)
. /trimtest/guest/lib.sh

require_thintrim
save_journal_on_exit

# === section f2fs ==============================================================
section_f2fs() {
    log "section f2fs: (filled in with the f2fs fix)"
}
# === end section f2fs ==========================================================

# === section polkit ============================================================
section_polkit() {
    log "section polkit: (filled in with the polkit fix)"
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
