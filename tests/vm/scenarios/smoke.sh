#!/bin/bash
# smoke -- the smallest scenario: boot, report where the boot time went, one
# mark, and the thintrim version when a .deb was given. A template for new
# scenarios, and `tests/vm/run-vm.sh smoke` is the quickest check that the
# image and the harness work.
#
# vm-disks:            (none extra)
. /trimtest/guest/lib.sh

log "kernel $(uname -r), $(nproc) cpus, cmdline: $(cat /proc/cmdline)"
# Boot is not "finished" for systemd-analyze while this unit runs: keep the
# journal instead (monotonic timestamps) for finding slow boot steps.
journalctl -b -o short-monotonic --no-pager >"$THINTRIM_VM_OUT/journal.txt" 2>&1 || true
busctl --system list --no-pager | head -n 5 || die "no system bus"
lsblk -o NAME,SERIAL,SIZE,DISC-GRAN,DISC-MAX
mark smoke
if have_thintrim; then
    run thintrim --version
else
    log "thintrim not installed (no THINTRIM_DEB): nothing more to do"
fi
