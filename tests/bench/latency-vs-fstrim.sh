#!/bin/bash
# latency-vs-fstrim.sh -- foreground write latency while another filesystem on
# the same disk is trimmed after 2 GiB were deleted: fio 4k random writes,
# queue depth 1, O_DIRECT, in the test guest (tests/vm, scenario
# pacing-latency). Prints p50/p99 with no trim, during fstrim, during thintrim
# with Pacing=fixed and Pacing=auto, and their ratios to the no-trim run.
# Target: thintrim auto's p99 ratio at most half of fstrim's, and its trim
# completes. Not in CI (one guest boot, several minutes).
#
#   THINTRIM_DEB=/path/thintrim_*.deb tests/bench/latency-vs-fstrim.sh [OUTDIR]
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
out=${1:-${TMPDIR:-/tmp}/thintrim-latency}
[ -n "${THINTRIM_DEB:-}" ] || { echo "THINTRIM_DEB must name the .deb to test" >&2; exit 77; }
"$here/../vm/run-vm.sh" --out "$out" --deb "$THINTRIM_DEB" pacing-latency || exit $?
python3 - "$out/share/out" <<'PY'
import json, os, sys
base = sys.argv[1]
results = {}
for line in open(os.path.join(base, "guest-results.tsv")):
    key, _, value = line.rstrip("\n").partition("\t")
    results[key] = value
rows = {}
for mode in ("none", "fstrim", "fixed", "auto"):
    job = json.load(open(os.path.join(base, f"fio-{mode}.json")))["jobs"][0]["write"]
    p = job["clat_ns"]["percentile"]
    rows[mode] = (p["50.000000"] / 1e6, p["99.000000"] / 1e6, job["iops"])
b50, b99, _ = rows["none"]
names = {"none": "no trim", "fstrim": "fstrim", "fixed": "thintrim Pacing=fixed",
         "auto": "thintrim Pacing=auto"}
print(f"{'run':<24}{'p50 ms':>9}{'p99 ms':>9}{'p50 x':>8}{'p99 x':>8}{'IOPS':>8}{'trim s':>8}  result")
for mode, (p50, p99, iops) in rows.items():
    seconds = results.get(f"trim.{mode}.seconds", "-") if mode != "none" else "-"
    rc = results.get(f"trim.{mode}.rc", "0")
    print(f"{names[mode]:<24}{p50:>9.2f}{p99:>9.2f}{p50 / b50:>8.2f}{p99 / b99:>8.2f}"
          f"{iops:>8.0f}{seconds:>8}  {'ok' if rc == '0' else 'exit ' + rc}")
fstrim_ratio = rows["fstrim"][1] / b99
auto_ratio = rows["auto"][1] / b99
met = auto_ratio <= fstrim_ratio / 2 and results.get("trim.auto.rc") == "0"
print(f"\ntarget: auto p99 ratio {auto_ratio:.2f} <= half of fstrim's {fstrim_ratio:.2f}, "
      f"trim completed: {'met' if met else 'NOT MET'}")
sys.exit(0 if met else 1)
PY
