#!/bin/bash
# test-seed-stack.sh -- by hand (not in meson: vm-thintrim-stack covers the
# stack with thintrim; this one needs no .deb). Host side of
# scenarios/seed-fstrim.sh: boots the guest, which builds
#   2 x scsi-hd qcow2 -> md raid1 -> LUKS2 (allow-discards) -> LVM -> ext4
# (plus a virtio-blk disk with ext4), writes data, deletes it, runs fstrim,
# and marks each step. Here we assert on the qcow2 files' allocated bytes:
#
#   grew     written - base   >= 90% of what the guest wrote   (the data landed)
#   deleted  written - deleted <  20% of grew   (deleting alone frees nothing:
#                                                ext4 is mounted without -o discard)
#   trimmed  written - trimmed >= 80% of grew   (fstrim reached the image file)
#
# and on the sysfs capture (out/share/out/seed-stack.tar.gz): the fixture
# layout, no capture warnings, the md/crypt/LVM chain present.
#
#   tests/vm/test-seed-stack.sh [--release bookworm|trixie]
#
# Environment: THINTRIM_VM_RELEASE (the guest, default bookworm; --release
# wins), THINTRIM_VM_OUT (default $TMPDIR/thintrim-vm-out/seed-stack), the
# .deb of that release to install in the guest (optional: THINTRIM_DEB on
# bookworm, THINTRIM_DEB_TRIXIE on trixie), THINTRIM_VM_CACHE.
# Exit 77 (skip) when not root or the VM tools are not installed
# (packaging/dev.sh deps installs them: see "# vm suite" in packaging/deps.txt).
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/seed-stack}
release=${THINTRIM_VM_RELEASE:-bookworm}
case ${1:-} in
--release) release=${2:?--release needs bookworm or trixie} ;;
"") ;;
*) echo "usage: $0 [--release bookworm|trixie]" >&2; exit 2 ;;
esac

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "the VM suite needs root"
for tool in qemu-system-x86_64 qemu-img mmdebstrap; do
    command -v "$tool" >/dev/null || skip "$tool not installed (run packaging/dev.sh deps)"
done

t0=$(date +%s)
rc=0
"$here/build-image.sh" --release "$release" || rc=$?
[ "$rc" = 77 ] && skip "build-image.sh cannot run here"
[ "$rc" = 0 ] || fail "the $release guest image did not build (see ${THINTRIM_VM_CACHE:-/var/cache/thintrim-vm}/$release/build.log)"
t1=$(date +%s)
echo "$release image ready in $((t1 - t0))s"

rc=0
"$here/run-vm.sh" --release "$release" --out "$out" --timeout "${THINTRIM_VM_TIMEOUT:-900}" seed-fstrim || rc=$?
[ "$rc" = 77 ] && skip "run-vm.sh cannot run here"
[ "$rc" = 0 ] || fail "the seed-fstrim scenario failed on $release (rc $rc); logs in $out (console.log, share/out/guest.log)"

results=$out/results.tsv
guest=$out/share/out/guest-results.tsv
[ -s "$results" ] || fail "no $results"
[ -s "$guest" ] || fail "no $guest"

# alloc MARK DISK -> allocated bytes of that image at that mark
alloc() {
    awk -F'\t' -v m="$1" -v d="$2" '$1 == m && $2 == d {print $3; found = 1} END {exit !found}' "$results" ||
        fail "no sample for mark $1, disk $2 in $results"
}
mib() { awk -v b="$1" 'BEGIN {printf "%7.1f", b / 1048576}'; }

bad=0
printf '%-6s %9s %9s %9s %9s | %9s %9s %9s  (MiB)\n' disk base written deleted trimmed grew freed_del freed_trim
for disk in data0 data1 vblk0; do
    expect=$(awk -F'\t' -v k="written_bytes.$disk" '$1 == k {print $2}' "$guest")
    [ -n "$expect" ] || fail "the guest did not report written_bytes.$disk"
    base=$(alloc base "$disk")
    written=$(alloc written "$disk")
    deleted=$(alloc deleted "$disk")
    trimmed=$(alloc trimmed "$disk")
    grew=$((written - base))
    freed_del=$((written - deleted))
    freed_trim=$((written - trimmed))
    printf '%-6s %9s %9s %9s %9s | %9s %9s %9s\n' "$disk" "$(mib "$base")" "$(mib "$written")" \
        "$(mib "$deleted")" "$(mib "$trimmed")" "$(mib "$grew")" "$(mib "$freed_del")" "$(mib "$freed_trim")"
    if [ $((grew * 10)) -lt $((expect * 9)) ]; then
        echo "  $disk: grew $(mib "$grew") MiB, expected at least 90% of $(mib "$expect") MiB"; bad=1
    fi
    if [ $((freed_del * 5)) -ge "$grew" ]; then
        echo "  $disk: deleting alone freed $(mib "$freed_del") MiB (>= 20% of what it grew): is ext4 mounted with -o discard?"; bad=1
    fi
    if [ $((freed_trim * 5)) -lt $((grew * 4)) ]; then
        echo "  $disk: fstrim freed only $(mib "$freed_trim") of $(mib "$grew") MiB (< 80%)"; bad=1
    fi
done
[ "$bad" = 0 ] || fail "the images did not shrink as expected (samples: $results)"

# The capture: fixture layout and the whole chain of the stack.
tar=$out/share/out/seed-stack.tar.gz
[ -s "$tar" ] || fail "no sysfs capture $tar"
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
tar -xzf "$tar" -C "$x"
for f in proc/self/mountinfo proc/swaps proc/mdstat meta/commands.txt meta/qemu.cmd \
         meta/capture-warnings.txt sys/class/block/md0 sys/block/dm-0; do
    [ -e "$x/$f" ] || fail "capture: $f missing"
done
[ ! -s "$x/meta/capture-warnings.txt" ] || fail "capture warnings: $(head -n 5 "$x/meta/capture-warnings.txt")"
grep -q '^CRYPT-LUKS2-' "$x/sys/block/dm-0/dm/uuid" || fail "capture: dm-0 is not the LUKS2 device"
[ "$(cat "$x/sys/class/block/md0/md/level")" = raid1 ] || fail "capture: md0 is not raid1"
for dev in sda sdb; do
    pm=$(cat "$x"/sys/block/$dev/device/scsi_disk/*/provisioning_mode)
    [ "$pm" = unmap ] || fail "capture: $dev provisioning_mode=$pm"
done
# Every layer of the root LV's chain passes discards.
root_dev=$(awk '$5 == "/mnt/root" {print $3}' "$x/proc/self/mountinfo")
[ -n "$root_dev" ] || fail "capture: /mnt/root not in mountinfo"
chain() { # walk slaves/ down from a device dir, printing name and discard_max_bytes
    local d=$1 s
    printf '%s=%s ' "${d##*/}" "$(cat "$d/queue/discard_max_bytes" 2>/dev/null || echo "(part)")"
    for s in "$d"/slaves/*; do [ -e "$s" ] && chain "$(readlink -f "$s")"; done
    [ -f "$d/partition" ] && chain "${d%/*}"   # a partition continues to its disk
    return 0
}
layers=$(chain "$(readlink -f "$x/sys/dev/block/$root_dev")")
echo "root LV chain: $layers"
case " $layers" in *" "*=0\ *) fail "capture: a layer of /mnt/root drops discards: $layers" ;; esac
[ "$(wc -w <<<"$layers")" -ge 7 ] || fail "capture: short chain for /mnt/root: $layers"

echo "timing: image $((t1 - t0))s, $(tr '\t\n' '= ' <"$out/timing.txt")"
echo "PASS ($release): every image shrank by >= 80% of what the data added; capture in $tar"
