# host-prove.sh -- guest side of thintrim-host's VM check (issue 18), sourced
# at the end of scenarios/disk-kinds.sh (after lib.sh, with thintrim installed).
# shellcheck shell=bash
#
# A fresh 1 GiB ext4 on trimdata1 (scsi-hd, -drive discard=unmap;
# /mnt/prove-unmap) and on ignore-scsi (scsi-hd, -drive discard=ignore;
# /mnt/prove-ignore, after /mnt/ignore is unmounted), 256 MiB written to each
# and deleted, then the mark host-prove: the host's on-mark hook
# (tests/vm/host-prove-hook.sh) runs `thintrim-host audit` and `thintrim-host
# prove`, which asks this guest's qemu-guest-agent to run `thintrim trim --all
# --json`, while the guest waits at the mark. The host test asserts on the
# JSON (tests/vm/check-host-prove.sh). Marks: prove-base, prove-written,
# host-prove (deleted; the hook runs), prove-trimmed, vzdump-hook (deleted
# again; the host runs the vzdump hook), vzdump-after. Results: prove.*.

prove_mib=256
prove_unmap=$(disk_by_serial trimdata1)
prove_ignore=$(disk_by_serial ignore-scsi)
result prove.unmap.dev "${prove_unmap#/dev/}"
result prove.ignore.dev "${prove_ignore#/dev/}"
run umount /mnt/ignore
run mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$prove_unmap" 1G
run mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$prove_ignore" 1G
run mkdir -p /mnt/prove-unmap /mnt/prove-ignore
run mount "$prove_unmap" /mnt/prove-unmap
run mount "$prove_ignore" /mnt/prove-ignore
# The agent the host's prove talks to (started by its udev rule at boot).
qga_state=$(systemctl is-active qemu-guest-agent 2>&1) || true
result prove.qga_active "$qga_state"
mark prove-base
for m in /mnt/prove-unmap /mnt/prove-ignore; do
    run dd if=/dev/zero of="$m/fill" bs=1M count=$prove_mib conv=fsync status=none
done
result prove.written_bytes $((prove_mib << 20))
mark prove-written
run rm /mnt/prove-unmap/fill /mnt/prove-ignore/fill
# Held here while the host audits and proves (the hook), up to its 120 s.
mark host-prove
mark prove-trimmed
# What the trim the host asked for left in the daemon (through the agent).
for m in /mnt/prove-unmap /mnt/prove-ignore; do
    obj=$(tt_fs_object "$m")
    result "prove.${m#/mnt/prove-}.LastTrimmedBytes" "$(tt_get "$obj" "$TT_FS" LastTrimmedBytes)"
done
# Proxmox VE's vzdump hook (issue 19): 256 MiB more written and deleted on
# /mnt/prove-unmap, then the mark vzdump-hook, where the host calls
# `thintrim-host vzdump-hook backup-start snapshot 100` as vzdump would; it
# asks this guest's agent to trim. The host samples data1 at vzdump-hook
# and vzdump-after.
run dd if=/dev/zero of=/mnt/prove-unmap/fill bs=1M count=$prove_mib conv=fsync status=none
run rm /mnt/prove-unmap/fill
run sync
mark vzdump-hook
mark vzdump-after
log "host-prove done"
