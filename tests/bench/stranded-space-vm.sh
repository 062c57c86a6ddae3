#!/bin/bash
# stranded-space-vm.sh - issue 19's stranded-space benchmark in the qemu guest
# of tests/vm: the workload and arithmetic of stranded-space.sh (the same
# stranded-space-lib.sh) on a thin qcow2 (trimdata0: 4 GiB, 64k clusters,
# discard=unmap, virtio-scsi) holding both filesystems, with the installed
# thintrimd under its real unit. One boot for every run (scenario
# tests/vm/scenarios/stranded-space.sh, which says what it does), then the
# backup copy: what `qemu-img convert` of the qcow2 holds after files were
# written and deleted, before and after the vzdump hook (`thintrim-host
# vzdump-hook backup-start`, which asks the guest's agent to trim). Prints
# the table (the loop run's columns) and the two copies. Not in CI.
#
#   THINTRIM_DEB=/tmp/debs/thintrim_*.deb tests/bench/stranded-space-vm.sh   (as root)
#   THINTRIM_DEB=... meson test -C build --benchmark stranded-space-vm -v
#   THINTRIM_DEB=... BENCH_MINUTES=2 BENCH_STEP_S=30 BENCH_STEP_MIB=64 BENCH_FS=ext4 \
#       BENCH_CONFIGS="none new" tests/bench/stranded-space-vm.sh      (a smoke run, ~15 min)
#
# The stranded space of a sample: the qcow2's allocated bytes on the host
# (st_blocks of the image file, read by the guest's sampler through a hard
# link in the 9p share at the moment it reads df's used blocks of both
# filesystems) minus those used blocks, less the same at the run's start.
#
# Environment: THINTRIM_DEB (required; skip 77 without); BENCH_FS (ext4 xfs),
# BENCH_CONFIGS (none discard old new), BENCH_MINUTES (30), BENCH_STEP_S
# (120), BENCH_STEP_MIB (256), BENCH_SAMPLE_S (10), BENCH_NEW_CONFIG (extra
# [Schedule] lines for new), BENCH_BACKUP_MIB (1024: written and deleted
# before the backup copy), as for stranded-space.sh; THINTRIM_HOST (the
# thintrim-host binary for the vzdump hook; default build/src/host/
# thintrim-host, else the one in the thintrim-host .deb next to
# THINTRIM_DEB); THINTRIM_VM_OUT (default
# $TMPDIR/thintrim-vm-out/stranded-space), THINTRIM_VM_CACHE,
# THINTRIM_VM_TIMEOUT (default: the runs' minutes plus 5 min per run and 15
# min). Only one VM at a time on a machine. The defaults take about 4.5 h
# (8 runs of 30 min plus setup under TCG).
set -euo pipefail

bench=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# host-lib.sh runs build-image.sh and run-vm.sh from $here.
here=$(cd "$bench/../vm" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/stranded-space}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"
# shellcheck source=tests/bench/stranded-space-lib.sh
. "$bench/stranded-space-lib.sh"

stranded_check_params
need_vm_tools
need_deb

# thintrim-host for the vzdump hook: the build's, else the package's.
if [ -z "${THINTRIM_HOST:-}" ] && [ -x "$bench/../../build/src/host/thintrim-host" ]; then
    THINTRIM_HOST=$(readlink -f "$bench/../../build/src/host/thintrim-host")
fi
if [ -z "${THINTRIM_HOST:-}" ]; then
    host_deb=$(compgen -G "$(dirname "$deb")/thintrim-host_*.deb" | head -n1 || true)
    [ -n "$host_deb" ] || fail "no thintrim-host for the vzdump hook: set THINTRIM_HOST, build it" \
        "(build/src/host/thintrim-host) or put the thintrim-host .deb next to $deb"
    unpacked=$(mktemp -d)
    trap 'rm -rf "$unpacked"' EXIT
    dpkg-deb -x "$host_deb" "$unpacked"
    THINTRIM_HOST=$unpacked/usr/bin/thintrim-host
fi
[ -x "$THINTRIM_HOST" ] || fail "THINTRIM_HOST=$THINTRIM_HOST: not an executable thintrim-host"
export THINTRIM_HOST
export THINTRIM_VM_ON_MARK=$bench/stranded-space-hook.sh
# The hook hands these to the guest (share/stranded.env).
export BENCH_FS BENCH_CONFIGS BENCH_MINUTES BENCH_STEP_S BENCH_STEP_MIB BENCH_SAMPLE_S \
    BENCH_NEW_CONFIG BENCH_BACKUP_MIB

runs=$((${#STRANDED_FSTYPES[@]} * ${#STRANDED_CONFIGS[@]}))
run_scenario stranded-space $((runs * (STRANDED_MINUTES * 60 + 300) + 900))
rm -f "$out/share/stranded-data0.qcow2" # the hook's link, should the guest have stopped early
o=$out/share/out

echo "# qemu/TCG guest ($(gres stranded.kernel), $(gres stranded.fio)," \
    "thintrim $(cut -d' ' -f2 "$o/thintrim-version.txt")); host $(nproc) CPUs; $runs run(s) in" \
    "$(gres stranded.seconds) s, boot to poweroff ${run_s} s"
echo "# trimdata0: 4 GiB qcow2 (64k clusters, discard=unmap, virtio-scsi); p1 1 GiB ext4 fio 4k" \
    "randwrite qd1, p2 the type under test with $STRANDED_STEP_MIB MiB written and the previous" \
    "step deleted every $STRANDED_STEP_S s for $STRANDED_MINUTES min; sampled every $STRANDED_SAMPLE_S s"
[[ -z ${BENCH_NEW_CONFIG:-} ]] || echo "# new = defaults + ${BENCH_NEW_CONFIG//$'\n'/ }"
while IFS=$'\t' read -r fs cfg _; do
    s=$(awk -F'\t' -v m="$fs-$cfg-start" '$1 == m && $2 == "data0" {print $5}' "$results")
    e=$(awk -F'\t' -v m="$fs-$cfg-end" '$1 == m && $2 == "data0" {print $5}' "$results")
    printf '#   %s %s: data0 %s MiB at the start, %s MiB at the end; %s s between the marks\n' \
        "$fs" "$cfg" "$(mib "$(alloc "$fs-$cfg-start" data0)")" "$(mib "$(alloc "$fs-$cfg-end" data0)")" \
        "$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.0f", b - a}')"
done <"$o/stranded-results.tsv"
echo
stranded_table "$o/stranded-results.tsv"

backup=$out/stranded-backup.tsv
[ -s "$backup" ] || fail "no $backup: the on-mark hook did not run (see $out/on-mark.log)"
# field KEY N: column N of the KEY line of stranded-backup.tsv, "?" without one.
field() { awk -F'\t' -v k="$1" -v n="$2" '$1 == k {v = $n} END {print (v == "" ? "?" : v)}' "$backup"; }
echo
echo "Backup copy (qemu-img convert -O qcow2 of data0, which reads the allocated clusters):" \
    "$(gres backup.mib) MiB written to p2 (ext4) and deleted, nothing trimmed, $(mib "$(gres backup.used_bytes)")" \
    "MiB in use on both filesystems"
printf '  %-34s %8s MiB  (data0 %s MiB; copied in %s s)\n' "without the vzdump hook" \
    "$(mib "$(field backup-deleted 2)")" "$(mib "$(alloc backup-deleted data0)")" "$(field backup-deleted 3)"
printf '  %-34s %8s MiB  (data0 %s MiB; copied in %s s)\n' "after the vzdump hook" \
    "$(mib "$(field backup-trimmed 2)")" "$(mib "$(alloc backup-trimmed data0)")" "$(field backup-trimmed 3)"
printf '  the hook: exit %s after %s s: %s\n' "$(field vzdump-hook 2)" "$(field vzdump-hook 3)" \
    "$(grep -m1 '^thintrim-host:' "$out/stranded-vzdump-hook.out" || echo '(no line)')"
[ "$(field vzdump-hook 2)" = 0 ] || fail "the vzdump hook exited $(field vzdump-hook 2) (see $out/stranded-vzdump-hook.out)"
