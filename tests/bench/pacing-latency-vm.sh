#!/bin/bash
# pacing-latency-vm.sh - issue 11's foreground-latency benchmark in the qemu
# guest of tests/vm: the measurement of pacing-latency.sh (the same
# pacing-latency-lib.sh) on a thin qcow2 (discard=unmap) holding both
# filesystems, with the installed thintrimd under its real unit. One boot for
# every run (scenario tests/vm/scenarios/pacing-latency.sh, which says what
# it does). Prints the table, how much of the qcow2 each trim gave back, and
# whether the target is met (exit 1 when not). Not in CI; about 20-25 min
# under TCG.
#
#   THINTRIM_DEB=/tmp/debs/thintrim_*.deb tests/bench/pacing-latency-vm.sh   (as root)
#   THINTRIM_DEB=... meson test -C build --benchmark pacing-latency-vm -v
#
# Environment: THINTRIM_DEB (required; skip 77 without), THINTRIM_VM_OUT
# (default $TMPDIR/thintrim-vm-out/pacing-latency), THINTRIM_VM_CACHE,
# THINTRIM_VM_TIMEOUT (default 1800 s). Only one VM at a time on a machine.
set -euo pipefail

bench=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# host-lib.sh runs build-image.sh and run-vm.sh from $here.
here=$(cd "$bench/../vm" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/pacing-latency}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"
# shellcheck source=tests/bench/pacing-latency-lib.sh
. "$bench/pacing-latency-lib.sh"

need_vm_tools
need_deb
run_scenario pacing-latency 1800
o=$out/share/out

echo "# qemu/TCG guest ($(gres pacing.kernel), PSI $(gres pacing.psi), $(gres pacing.fio)," \
    "thintrim $(cut -d' ' -f2 "$o/thintrim-version.txt")); host $(nproc) CPUs"
echo "# trimdata0: 4 GiB qcow2 (64k clusters, discard=unmap, virtio-scsi); p1 1 GiB ext4 fio," \
    "p2 3 GiB ext4 trimmed after 2048 MiB deleted; round(s): $(gres pacing.rounds) in $(gres pacing.seconds) s"
echo "# qcow2 given back by each trim (data0 at the marks MODE-ROUND-deleted -> MODE-ROUND-trimmed):"
while IFS=$'\t' read -r mode round _; do
    d=$(alloc "$mode-$round-deleted" data0)
    t=$(alloc "$mode-$round-trimmed" data0)
    printf '#   %-7s round %s: %s -> %s MiB (%s MiB freed)\n' "$mode" "$round" "$(mib "$d")" \
        "$(mib "$t")" "$(mib $((d - t)))"
done <"$o/pacing-results.tsv"
echo
pacing_table "$o/pacing-results.tsv" 15
