#!/bin/bash
# pacing-latency -- guest side of issue 11's foreground-latency benchmark
# (host: tests/bench/pacing-latency-vm.sh, which prints the table; not in
# CI). The measurement is tests/bench/pacing-latency-lib.sh, the one the
# loop-disk run uses; this file only says how the guest fills, polls and
# trims.
#
# One thin disk (trimdata0: 4 GiB qcow2, discard=unmap) with a GPT: p1 (1 GiB
# ext4, /mnt/fg) takes fio's 4k random writes at queue depth 1; p2 (3 GiB
# ext4, /mnt/bg) has 2 GiB written and deleted before each run, then is
# trimmed: not at all, by fstrim, by the installed thintrimd (its real unit,
# the stock configuration plus a drop-in Pacing=fixed or Pacing=auto and a
# restart) through `thintrim trim`. Rounds of the four runs, interleaved, as
# many as fit in BUDGET_S (at least 1, at most MAX_ROUNDS): TCG is slow and
# the whole benchmark must stay under 25 min.
#
# Out: pacing-results.tsv (the lib's rows), pacing-*.trim / *.states (what
# each trim printed, the PacingState seen), results pacing.rounds,
# pacing.psi, pacing.kernel; marks MODE-ROUND-deleted and MODE-ROUND-trimmed
# (the host reads how much of the qcow2 each trim gave back).
#
# vm-disks:            (none extra)
# vm-share: tests/bench/pacing-latency-lib.sh
. /trimtest/guest/lib.sh
# shellcheck source=tests/bench/pacing-latency-lib.sh
. /trimtest/guest/pacing-latency-lib.sh

require_thintrim
save_journal_on_exit
tt_quiet_schedule

MAX_ROUNDS=3
BUDGET_S=1200

disk=$(disk_by_serial trimdata0)
run_stdin sfdisk --quiet "$disk" <<'PARTS'
label: gpt
size=1GiB
size=+
PARTS
udevadm settle
# Inode tables and journal written now, so no lazy-init thread writes in the
# background of a measurement.
run mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "${disk}1"
run mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "${disk}2"
run mkdir -p /mnt/fg /mnt/bg
run mount -o nodiscard "${disk}1" /mnt/fg
run mount -o nodiscard "${disk}2" /mnt/bg
run fstrim /mnt/bg # the first round starts from a trimmed filesystem

seed=/var/tmp/pacing-seed
run head -c 8388608 /dev/urandom >"$seed"
pacing_fill() {
    local i
    for ((i = 0; i < $2 / 8; i++)); do cat "$seed"; done >"$1"
}
pacing_state() { tt_get "$TT_ROOT" "$TT_MGR" PacingState; }
pacing_thintrim() { thintrim trim "$1"; }
pacing_mark() { mark "$1"; }

set_pacing() {
    run_stdin tee /etc/thintrim/thintrim.conf.d/60-pacing.conf <<CONF >/dev/null
[Trim]
Pacing=$1
CONF
    run systemctl restart thintrimd
    tt_fs_object /mnt/bg >/dev/null
}

PACING_FG=/mnt/fg PACING_BG=/mnt/bg PACING_MIB=2048 PACING_DIR=/var/tmp/pacing
PACING_RESULTS=$THINTRIM_VM_OUT/pacing-results.tsv
# Fewer, longer samples than on the host: each busctl costs the guest's
# emulated CPUs, and a "no trim" run gets as many writes as a trim run.
PACING_IDLE_S=15 PACING_POLL_S=1
mkdir -p "$PACING_DIR"
: >"$PACING_RESULTS"
result pacing.kernel "$(uname -r)"
result pacing.psi "$([ -r /proc/pressure/io ] && echo yes || echo no)"
result pacing.fio "$(fio --version)"

start=$SECONDS round=0 last=0
while ((round < MAX_ROUNDS)); do
    if ((round > 0 && SECONDS - start + last * 6 / 5 > BUDGET_S)); then
        log "pacing: round $((round + 1)) would end past ${BUDGET_S}s (the last took ${last}s): stopping"
        break
    fi
    round=$((round + 1)) t=$SECONDS
    pacing_measure none "$round"
    pacing_measure fstrim "$round"
    set_pacing fixed
    pacing_measure fixed "$round"
    set_pacing auto
    pacing_measure auto "$round"
    last=$((SECONDS - t))
    log "pacing: round $round took ${last}s"
done
result pacing.rounds "$round"
result pacing.seconds $((SECONDS - start))
for f in "$PACING_DIR"/*.trim "$PACING_DIR"/*.states; do
    cp "$f" "$THINTRIM_VM_OUT/pacing-$(basename "$f")"
done
