#!/bin/bash
# test-hardening.sh -- meson test vm-hardening (suite vm). Host side of
# scenarios/hardening.sh (issue 10): one boot of the installed .deb under its
# real hardened unit. Each section of the scenario has its section here,
# asserting what a user sees (see the scenario's header for what each does).
#
# Environment: THINTRIM_DEB (required: the .deb to test; skip 77 without),
# THINTRIM_VM_OUT (default $TMPDIR/thintrim-vm-out/hardening; meson sets
# <build>/tests/vm/hardening), THINTRIM_VM_CACHE, THINTRIM_VM_TIMEOUT.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/hardening}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"

need_vm_tools
need_deb
run_scenario hardening 600
o=$out/share/out
bad=0
bad() { echo "  BAD: $*"; bad=1; }

# === section f2fs ==============================================================
# === end section f2fs ==========================================================

# === section polkit ============================================================
# === end section polkit ========================================================

# === section automount-removable ===============================================
# === end section automount-removable ===========================================

echo "timing: image ${image_s}s, run ${run_s}s ($(tr '\t\n' '= ' <"$out/timing.txt"))"
[ "$bad" = 0 ] || fail "see BAD lines above; guest log $o/guest.log, busctl session $o/transcript.txt"
echo "PASS: hardening"
