#!/bin/bash
# pacing-latency -- the foreground-latency benchmark of issue 11 (not in CI;
# tests/bench/latency-vs-fstrim.sh runs it and prints the table). One disk
# (trimdata0) with two ext4 filesystems: fio writes 4k blocks at random, queue
# depth 1, O_DIRECT on /mnt/fg while /mnt/bg, where 2 GiB were just deleted,
# is trimmed: not at all, by fstrim, by thintrim with Pacing=fixed and with
# Pacing=auto. fio's JSON for each run goes to $THINTRIM_VM_OUT/fio-MODE.json,
# the trim's duration and outcome to guest-results.tsv.
#
# vm-disks:            (none extra)
. /trimtest/guest/lib.sh
require_thintrim
save_journal_on_exit
tt_quiet_schedule

disk=$(disk_by_serial trimdata0)
run sfdisk --quiet "$disk" <<'PARTS'
label: gpt
size=1GiB
size=+
PARTS
udevadm settle
run mkfs.ext4 -q -F "${disk}1"
run mkfs.ext4 -q -F "${disk}2"
mkdir -p /mnt/fg /mnt/bg
run mount "${disk}1" /mnt/fg
run mount "${disk}2" /mnt/bg
run fstrim /mnt/bg # start from an empty trim state

fill_and_delete() {
    run dd if=/dev/zero of=/mnt/bg/fill bs=1M count=2048 conv=fsync status=none
    run rm /mnt/bg/fill
    sync
    sleep 6 # ext4 frees the blocks at its next journal commit
}

# fio runs until told to stop; returns its pid in $fio_pid.
start_fio() {
    fio --name=fg --filename=/mnt/fg/fio.dat --size=512M --rw=randwrite --bs=4k \
        --iodepth=1 --direct=1 --ioengine=psync --time_based --runtime=600 \
        --output-format=json --output="$THINTRIM_VM_OUT/fio-$1.json" >/dev/null 2>&1 &
    fio_pid=$!
    sleep 3 # past fio's file layout and warm-up
}
stop_fio() {
    kill -INT "$fio_pid"
    wait "$fio_pid" || true
}

pacing() {
    run_stdin tee /etc/thintrim/thintrim.conf.d/60-pacing.conf <<CONF >/dev/null
[Trim]
Pacing=$1
CONF
    run systemctl reload thintrimd
}

# Each measured run: fio alone for a moment, the trim, fio stops right after.
measure() {
    local mode=$1 started ended rc
    start_fio "$mode"
    started=$(date +%s.%N)
    case $mode in
    none) sleep 20 ;;
    fstrim) fstrim -v /mnt/bg; rc=$? ;;
    fixed | auto) thintrim trim /mnt/bg; rc=$? ;;
    esac
    ended=$(date +%s.%N)
    stop_fio
    result "trim.$mode.seconds" "$(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.1f", b - a}')"
    result "trim.$mode.rc" "${rc:-0}"
}

run fio --version
measure none
fill_and_delete
measure fstrim
fill_and_delete
pacing fixed
measure fixed
fill_and_delete
pacing auto
measure auto
bus journalctl -u thintrimd --no-pager -o cat -n 30 || true
mark pacing-done
