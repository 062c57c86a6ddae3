#!/bin/bash
# stranded-space-hook.sh -- run-vm.sh --on-mark hook of the stranded-space
# benchmark (tests/bench/stranded-space-vm.sh; guest side
# tests/vm/scenarios/stranded-space.sh). The guest is held at each mark while
# this runs.
#
#   stranded-setup   writes share/stranded.env (the BENCH_* settings of the
#                    host's environment, for the guest to source) and hard-links
#                    data0's qcow2 (trimdata0) to share/stranded-data0.qcow2:
#                    the guest's sampler stats it over 9p, so each sample holds
#                    the host's allocation of the moment
#   backup-deleted   qemu-img convert -U -O qcow2 of data0 (as a backup tool
#   backup-trimmed   reads the allocated clusters): the copy's allocated bytes
#                    and its time, a line in stranded-backup.tsv
#   backup-hook      the vzdump hook as vzdump calls it at backup-start:
#                    VMTYPE=qemu THINTRIM_HOST vzdump-hook --qga QGA
#                    --timeout 30s --trim-timeout 90s backup-start snapshot 100;
#                    its output in stranded-vzdump-hook.out, exit status and time
#                    in stranded-backup.tsv
#   stranded-done    removes the hard link (else the image outlives run-vm.sh's
#                    cleanup of disks/)
#
# stranded-backup.tsv (in THINTRIM_VM_OUT): "MARK bytes seconds" for a copy,
# "vzdump-hook exit-status seconds" for the hook. Environment: from run-vm.sh
# THINTRIM_VM_QGA, THINTRIM_VM_OUT; from the benchmark THINTRIM_HOST (the
# thintrim-host binary) and BENCH_*.
set -uo pipefail

out=$THINTRIM_VM_OUT
link=$out/share/stranded-data0.qcow2
tsv=$out/stranded-backup.tsv
data0=$(awk -F'\t' '$1 == "data0" {print $2}' "$out/disks.tsv")
[ -f "$data0" ] || { echo "no data0 image in $out/disks.tsv"; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

case ${1:-} in
stranded-setup)
    ln -f "$data0" "$link" || exit 1
    for var in BENCH_FS BENCH_CONFIGS BENCH_MINUTES BENCH_STEP_S BENCH_STEP_MIB BENCH_SAMPLE_S \
        BENCH_NEW_CONFIG BENCH_BACKUP_MIB; do
        [ -z "${!var+set}" ] || printf '%s=%q\n' "$var" "${!var}"
    done >"$out/share/stranded.env"
    echo "linked $data0 to $link; stranded.env:"
    cat "$out/share/stranded.env"
    ;;
backup-deleted | backup-trimmed)
    copy=$out/disks/stranded-copy.qcow2
    t0=$(date +%s.%N)
    # -U: qemu holds the image's write lock. The guest synced at the mark, so
    # the image file holds its metadata.
    qemu-img convert -U -O qcow2 -o cluster_size=64k "$data0" "$copy" || exit 1
    s=$(since "$t0")
    read -r blocks unit < <(stat -c '%b %B' "$copy")
    printf '%s\t%s\t%s\n' "$1" $((blocks * unit)) "$s" >>"$tsv"
    echo "$1: the copy of data0 allocates $((blocks * unit)) bytes ($s s)"
    rm -f "$copy"
    ;;
backup-hook)
    host=${THINTRIM_HOST:-}
    if [ -z "$host" ] || [ ! -x "$host" ]; then
        echo "THINTRIM_HOST='$host': not an executable thintrim-host"
        printf 'vzdump-hook\tmissing\t0\n' >>"$tsv"
        exit 1
    fi
    rc=0
    t0=$(date +%s.%N)
    VMTYPE=qemu "$host" vzdump-hook --qga "$THINTRIM_VM_QGA" --timeout 30s --trim-timeout 90s \
        backup-start snapshot 100 >"$out/stranded-vzdump-hook.out" 2>&1 || rc=$?
    s=$(since "$t0")
    printf 'vzdump-hook\t%s\t%s\n' "$rc" "$s" >>"$tsv"
    echo "vzdump-hook: exit $rc after $s s"
    cat "$out/stranded-vzdump-hook.out"
    ;;
stranded-done) rm -f "$link" ;;
esac
exit 0
