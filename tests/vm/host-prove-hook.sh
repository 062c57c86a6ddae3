#!/bin/bash
# host-prove-hook.sh -- run-vm.sh --on-mark hook of vm-disk-kinds (issue 18).
# At the mark host-prove (guest/host-prove.sh: 256 MiB written and deleted on
# a discard=unmap and a discard=ignore disk, the guest held at the mark), runs
# thintrim-host against this run's QEMU, as an admin would on a host:
#
#   thintrim-host audit --pid PID --json
#   thintrim-host prove thintrim-vm --pid PID --qga $THINTRIM_VM_QGA --qmp $THINTRIM_VM_QMP --json
#
# and saves into $THINTRIM_VM_OUT/host-prove/: audit.json, audit.rc,
# audit.stderr, prove.json, prove.rc, prove.stderr, qemu.pid. Every other mark:
# nothing. The host test (check-host-prove.sh) asserts on those files, so a
# failure here fails the test there, never silently.
#
# Environment: from run-vm.sh THINTRIM_VM_QMP, THINTRIM_VM_QGA,
# THINTRIM_VM_OUT; from the test THINTRIM_HOST (the thintrim-host binary).
# THINTRIM_VM_PROVE_TEXT=1: prove prints its table instead of JSON (by hand,
# for the docs; the test's assertions need the JSON).
#
# At the mark vzdump-hook (issue 19: 256 MiB written and deleted again on
# data1), runs Proxmox VE's vzdump hook as vzdump would call it:
#
#   VMTYPE=qemu thintrim-host vzdump-hook --qga $THINTRIM_VM_QGA backup-start snapshot 100
#
# and saves vzdump-hook.out and vzdump-hook.rc; check-host-prove.sh checks
# that it exited 0 and that data1's image gave the space back (the host's
# samples at the marks vzdump-hook and vzdump-after).
set -uo pipefail

case ${1:-} in host-prove | vzdump-hook) ;; *) exit 0 ;; esac
dir=$THINTRIM_VM_OUT/host-prove
mkdir -p "$dir"
host=${THINTRIM_HOST:-}
if [ -z "$host" ] || [ ! -x "$host" ]; then
    echo "THINTRIM_HOST='$host': not an executable thintrim-host" | tee "$dir/error"
    exit 1
fi
if [ "$1" = vzdump-hook ]; then
    rc=0
    VMTYPE=qemu "$host" vzdump-hook --qga "$THINTRIM_VM_QGA" --timeout 30s --trim-timeout 90s \
        backup-start snapshot 100 >"$dir/vzdump-hook.out" 2>&1 || rc=$?
    echo "$rc" >"$dir/vzdump-hook.rc"
    echo "vzdump-hook: exit $rc"
    cat "$dir/vzdump-hook.out"
    exit 0
fi

# This run's QEMU: the process whose command line has this run's QMP socket
# (run-vm.sh starts it under setpriv and timeout(1), whose command lines hold
# the socket path too: keep the one whose comm is QEMU's).
pid=
for p in $(pgrep -f -- "unix:$THINTRIM_VM_QMP,"); do
    comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    case $comm in qemu-system*) pid=$p ;; esac
done
if [ -z "$pid" ]; then
    echo "no QEMU process with $THINTRIM_VM_QMP on its command line" | tee "$dir/error"
    exit 1
fi
echo "$pid" >"$dir/qemu.pid"
echo "qemu pid $pid"

# TCG is slow: a generous wait per QMP/agent answer.
rc=0
"$host" audit --pid "$pid" --json --timeout 30s >"$dir/audit.json" 2>"$dir/audit.stderr" || rc=$?
echo "$rc" >"$dir/audit.rc"
echo "audit: exit $rc"
cat "$dir/audit.stderr"

format=(--json)
out_file=$dir/prove.json
if [ "${THINTRIM_VM_PROVE_TEXT:-0}" = 1 ]; then
    format=()
    out_file=$dir/prove.txt
fi
rc=0
t0=$(date +%s.%N)
"$host" prove thintrim-vm --pid "$pid" --qga "$THINTRIM_VM_QGA" --qmp "$THINTRIM_VM_QMP" \
    --timeout 30s --trim-timeout 90s "${format[@]}" >"$out_file" 2>"$dir/prove.stderr" || rc=$?
echo "$rc" >"$dir/prove.rc"
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f\n", b - a}' >"$dir/prove.seconds"
echo "prove: exit $rc after $(cat "$dir/prove.seconds")s"
cat "$dir/prove.stderr"
[ "${THINTRIM_VM_PROVE_TEXT:-0}" = 1 ] && cat "$out_file"
# prove exits 1 when a disk did not give space back, which it must here (the
# discard=ignore disk): only a missing report is a failure of the hook.
[ -s "$out_file" ] && [ -s "$dir/audit.json" ]
