#!/bin/bash
# test-thintrim-stack.sh -- meson test vm-thintrim-stack (suite vm). Host side
# of scenarios/thintrim-stack.sh: the installed thintrim .deb on the seed stack
#   2 x scsi-hd qcow2 -> md raid1 -> LUKS2 -> LVM -> ext4 / xfs
#   (+ ext4 on sda2, ext4 on a virtio-blk partition)
# driven with systemctl, busctl and thintrim in one boot. Asserts, per part:
#
#  -  the guest is the release the run proves: Debian 13, kernel 6.12.*,
#     systemd 257 on trixie (12, 6.1.*, 252 on bookworm).
#  A  busctl Manager.Trim of /mnt/root: data0 and data1 (the raid1 halves)
#     grew >= 90% of the 600 MiB written, deleting alone freed < 20%, the trim
#     freed >= 80% of the growth; LastTrimResult success, LastTrimmedBytes
#     >= 90% of what was written (ext4's first trim in a mount counts all
#     free space), a job id.
#  B  with Interval=1min, RandomizedDelay=0, BootDelay=0 and no manual call:
#     /mnt/vblk (ext4 partition, vblk0) and /mnt/data (xfs LV, data0+data1)
#     trimmed at once after the restart (never trimmed), then again at the
#     next Interval after 200 MiB each were written and deleted: every image
#     freed >= 80% of its growth; a reload back to Interval=1w works.
#  C  the sysfs capture (out/share/out/seed-stack.tar.gz): fixture layout, no
#     warnings, the whole chain of /mnt/root passes discards.
#  D  LUKS reopened without --allow-discards: Eligible false, Reason names
#     dm-crypt, seedcrypt and the /etc/crypttab `discard` fix; Trim over
#     busctl and `thintrim trim` refused (non-zero, the same sentence); after
#     writing 300 MiB, deleting and `thintrim trim --all` the images freed
#     < 20%.
#  E  the doctor with an /etc/crypttab line without `discard` and
#     fstrim.timer enabled: `thintrim doctor --json` (source daemon) and
#     Manager.Diagnose both have a warning for "fstrim.timer" and one for
#     "/etc/crypttab" whose message names seedcrypt; the exit code is 1
#     exactly when a finding is an error (here /mnt/root's stack); the
#     baseline run (healthy stack, timer masked) has neither warning; without
#     a system bus the doctor answers itself (source local) with the same
#     findings.
#  F  after `cryptsetup refresh --allow-discards` (the doctor's hint),
#     the LVs' tables reloaded and `thintrim trim /mnt/root`, the 300 MiB
#     of part D are freed (>= 80%);
#     whether the daemon noticed the change without a restart is reported.
#  G  md0 degraded (a member failed and removed), Interval=1min: the
#     scheduled trim of /mnt/data is skipped with LastTrimMessage "deferred:
#     md0 ... degraded ...", shown by `thintrim status` and in the journal;
#     /mnt/vblk (not on md0) is trimmed; `thintrim trim /mnt/data` succeeds.
#
# Runs on Debian 13 (trixie) unless THINTRIM_VM_RELEASE says otherwise (the
# meson test sets trixie): the other vm tests keep bookworm, so each release
# is proved without a second boot of any scenario.
#
# Environment: THINTRIM_DEB_TRIXIE (required on trixie: the .deb built on
# trixie; skip 77 without; THINTRIM_DEB with THINTRIM_VM_RELEASE=bookworm),
# THINTRIM_VM_OUT (default $TMPDIR/thintrim-vm-out/thintrim-stack; meson sets
# <build>/tests/vm/thintrim-stack), THINTRIM_VM_CACHE, THINTRIM_VM_TIMEOUT.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
out=${THINTRIM_VM_OUT:-${TMPDIR:-/tmp}/thintrim-vm-out/thintrim-stack}
# shellcheck source=tests/vm/host-lib.sh
. "$here/host-lib.sh"

need_vm_tools
vm_release trixie
need_deb
run_scenario thintrim-stack 1200
o=$out/share/out
bad=0
bad() { echo "  BAD: $*"; bad=1; }

# check_images TITLE M0 M1 M2 M3 WRITTEN_BYTES FREE_MAX_PCT DISK...
#   M0..M3: marks base, written, deleted, trimmed. Asserts, per disk: grew
#   (M1-M0) >= 90% of WRITTEN; freed by deleting (M1-M2) < 20% of grew; freed
#   by the trim (M1-M3) >= 80% of grew, or, with FREE_MAX_PCT, < that %.
check_images() {
    local title=$1 m0=$2 m1=$3 m2=$4 m3=$5 expect=$6 free_max=$7 disk b w d t grew fd ft
    shift 7
    echo "$title"
    printf '  %-6s %9s %9s %9s %9s | %9s %9s %9s  (MiB)\n' disk "$m0" "$m1" "$m2" "$m3" grew freed_del freed_trim
    for disk in "$@"; do
        b=$(alloc "$m0" "$disk"); w=$(alloc "$m1" "$disk"); d=$(alloc "$m2" "$disk"); t=$(alloc "$m3" "$disk")
        grew=$((w - b)); fd=$((w - d)); ft=$((w - t))
        printf '  %-6s %9s %9s %9s %9s | %9s %9s %9s   freed %s%%\n' "$disk" "$(mib "$b")" "$(mib "$w")" \
            "$(mib "$d")" "$(mib "$t")" "$(mib "$grew")" "$(mib "$fd")" "$(mib "$ft")" "$(pct "$ft" "$grew")"
        [ $((grew * 10)) -ge $((expect * 9)) ] ||
            bad "$disk: grew $(mib "$grew") MiB, expected at least 90% of $(mib "$expect") MiB"
        [ $((fd * 5)) -lt "$grew" ] ||
            bad "$disk: deleting alone freed $(mib "$fd") MiB (>= 20%): mounted with -o discard, or a trim ran too early?"
        if [ "$free_max" = - ]; then
            [ $((ft * 5)) -ge $((grew * 4)) ] || bad "$disk: the trim freed only $(mib "$ft") of $(mib "$grew") MiB (< 80%)"
        else
            [ $((ft * 100)) -lt $((grew * free_max)) ] ||
                bad "$disk: $(mib "$ft") of $(mib "$grew") MiB were freed (>= $free_max%) although nothing may pass discards"
        fi
    done
}
eq() { [ "$(gres "$1")" = "$2" ] || bad "$1 = '$(gres "$1")', want '$2'"; }
ge() { local v; v=$(gres "$1"); [[ $v =~ ^[0-9]+$ ]] && [ "$v" -ge "$2" ] || bad "$1 = '$v', want >= $2"; }

# The guest is the release this run claims to prove.
case $release in
bookworm) want_version_id=12 want_kernel='6.1.*' want_systemd=252 ;;
trixie) want_version_id=13 want_kernel='6.12.*' want_systemd=257 ;;
esac
echo "guest: $release, Debian $(gres guest.version_id), kernel $(gres guest.kernel), systemd $(gres guest.systemd)"
eq guest.release "$release"
eq guest.version_id "$want_version_id"
eq guest.systemd "$want_systemd"
# shellcheck disable=SC2053 # a glob on purpose
[[ $(gres guest.kernel) == $want_kernel ]] || bad "kernel $(gres guest.kernel), want $want_kernel on $release"
echo "installed: $(cat "$o/thintrim-version.txt" 2>/dev/null), after dpkg -i: $(gres installed.enabled), $(gres installed.active)"

# --- A ------------------------------------------------------------------------
written=$(gres written_bytes.root)
check_images "A: Manager.Trim of /mnt/root over busctl (600 MiB written in $(gres write_seconds.root)s)" \
    base written deleted trimmed "$written" - data0 data1
ge trim.root.job 1
eq trim.root.LastTrimResult success
ge trim.root.LastTrimmedBytes $((written * 9 / 10))
ge trim.root.LastTrimStarted "$(gres trim.root.since)"
eq trim.root.TrimCount 1
echo "  job $(gres trim.root.job): LastTrimResult $(gres trim.root.LastTrimResult)," \
    "LastTrimmedBytes $(gres trim.root.LastTrimmedBytes), LastTrimDuration $(gres trim.root.LastTrimDuration) us"
# The root filesystem is managed as "/", not as the daemon's private /tmp
# (PrivateTmp=yes binds a subtree of it there).
eq rootfs.getfilesystem_rc 0

# --- B ------------------------------------------------------------------------
eq sched.interval 60000000
for m in vblk data; do
    eq "sched1.$m.LastTrimResult" success
    ge "sched1.$m.LastTrimStarted" "$(gres sched1.restart)"
    eq "sched2.$m.LastTrimResult" success
    ge "sched2.$m.LastTrimStarted" "$(gres sched2.deleted_at)"
    ge "sched2.$m.TrimCount" 2
done
check_images "B: the schedule (Interval=1min; 200 MiB written to /mnt/vblk and /mnt/data in $(gres write_seconds.sched)s, no manual call)" \
    sched-base sched-written sched-deleted sched-trimmed "$(gres written_bytes.sched)" - vblk0 data1 data0
for m in vblk data; do
    s=$(gres "sched2.$m.LastTrimStarted")
    echo "  $m: scheduled trim started $(awk -v a="$s" -v b="$(gres sched2.deleted_at)" 'BEGIN {printf "%.1f", (a - b) / 1e6}')s" \
        "after the deletion, LastTrimmedBytes $(gres "sched2.$m.LastTrimmedBytes"), TrimCount $(gres "sched2.$m.TrimCount")"
done
eq reload.rc 0
eq reload.interval 604800000000

# --- C ------------------------------------------------------------------------
tar=$o/seed-stack.tar.gz
[ -s "$tar" ] || fail "no sysfs capture $tar"
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
tar -xzf "$tar" -C "$x"
for f in proc/self/mountinfo proc/swaps proc/mdstat meta/commands.txt meta/qemu.cmd \
         meta/capture-warnings.txt sys/class/block/md0; do
    [ -e "$x/$f" ] || bad "capture: $f missing"
done
[ ! -s "$x/meta/capture-warnings.txt" ] || bad "capture warnings: $(head -n 5 "$x/meta/capture-warnings.txt")"
[ "$(cat "$x/sys/class/block/md0/md/level" 2>/dev/null)" = raid1 ] || bad "capture: md0 is not raid1"
chain() { # walk slaves/ down from a device dir, printing name=discard_max_bytes
    local d=$1 s
    printf '%s=%s ' "${d##*/}" "$(cat "$d/queue/discard_max_bytes" 2>/dev/null || echo "(part)")"
    for s in "$d"/slaves/*; do [ -e "$s" ] && chain "$(readlink -f "$s")"; done
    [ -f "$d/partition" ] && chain "${d%/*}"
    return 0
}
root_dev=$(awk '$5 == "/mnt/root" {print $3}' "$x/proc/self/mountinfo")
[ -n "$root_dev" ] || fail "capture: /mnt/root not in mountinfo"
layers=$(chain "$(readlink -f "$x/sys/dev/block/$root_dev")")
echo "C: capture $tar; /mnt/root chain: $layers"
case " $layers" in *" "*=0\ *) bad "capture: a layer of /mnt/root drops discards: $layers" ;; esac
[ "$(wc -w <<<"$layers")" -ge 7 ] || bad "capture: short chain for /mnt/root: $layers"
grep -q CRYPT-LUKS2- "$x"/sys/class/block/dm-*/dm/uuid || bad "capture: no LUKS2 device"

# --- D ------------------------------------------------------------------------
echo "D: seedcrypt reopened without --allow-discards"
eq nodisc.root.eligible false
reason=$(jq -r .data "$o/nodisc-root-reason.json") || fail "no Reason in $o/nodisc-root-reason.json"
echo "  Reason: $reason"
for word in dm-crypt seedcrypt /etc/crypttab '`discard`'; do
    grep -qF -- "$word" <<<"$reason" || bad "Reason does not mention $word"
done
crypt_passes=$(jq -r '[.data[] | select(.[2] == "crypt") | .[5]] | first' "$o/nodisc-root-stack.json")
[ "$crypt_passes" = false ] || bad "Stack: the crypt layer passes discards? ($crypt_passes)"
[ "$(gres nodisc.busctl_trim.rc)" != 0 ] || bad "busctl Trim of /mnt/root was accepted"
refusal=$(cat "$o/nodisc-busctl-trim.txt.err")
echo "  busctl Trim: $refusal"
grep -qF "$reason" <<<"$refusal" || bad "the refusal does not carry the Reason"
eq nodisc.cli_trim.rc 1
check_images "  300 MiB written, deleted, then \`thintrim trim --all\` (exit $(gres nodisc.cli_trim_all.rc)): nothing may be freed" \
    nodisc-base nodisc-written nodisc-trimmed nodisc-trimmed "$(gres written_bytes.nodisc)" 20 data0 data1

# --- E ------------------------------------------------------------------------
echo "E: the doctor (crypttab line $(gres crypttab.line) for $(gres crypttab.name) without discard; fstrim.timer $(gres fstrim_timer.enabled))"
name=$(gres crypttab.name)
# has_finding FILE JQ_FINDINGS SEVERITY SUBJECT [MESSAGE_WORD]
has_finding() {
    jq -e --arg sev "$3" --arg sub "$4" --arg word "${5:-}" \
        "[$2 | select(.severity == \$sev and .subject == \$sub and (.message | contains(\$word)))] | length > 0" \
        "$1" >/dev/null 2>&1
}
doctor_findings='.findings[]'
# jq -e on an empty file exits 0: check the size first.
is_doctor_json() { [ -s "$1" ] && jq -e '.findings | type == "array"' "$1" >/dev/null 2>&1; }
diagnose_findings='.data[0][] | {severity: .[0], subject: .[1], message: .[2], hint: .[3]}'
check_doctor() { # FILE RC WANT_SOURCE [ROOT_SEVERITY (default error)]
    local file=$1 rc=$2 source errors root_severity=${4:-error}
    if ! is_doctor_json "$file"; then
        bad "$(basename "$file"): not the doctor's JSON (exit $rc): $(head -c 300 "$file.err" | tr '\n' ' ')"
        return
    fi
    source=$(jq -r .source "$file")
    [ "$source" = "$3" ] || bad "$(basename "$file"): source '$source', want '$3'"
    errors=$(jq '[.findings[] | select(.severity == "error")] | length' "$file")
    [ "$rc" = $((errors > 0 ? 1 : 0)) ] || bad "$(basename "$file"): exit $rc with $errors error finding(s)"
    has_finding "$file" "$doctor_findings" warning fstrim.timer ||
        bad "$(basename "$file"): no warning with subject fstrim.timer"
    has_finding "$file" "$doctor_findings" warning /etc/crypttab "$name" ||
        bad "$(basename "$file"): no warning with subject /etc/crypttab naming $name"
    has_finding "$file" "$doctor_findings" "$root_severity" /mnt/root ||
        bad "$(basename "$file"): no $root_severity finding for /mnt/root"
    echo "  $(basename "$file"): source $source, exit $rc, $(jq -r '[.findings[].severity] | group_by(.) | map("\(length) \(.[0])") | join(", ")' "$file")"
}
check_doctor "$o/doctor.json" "$(gres doctor.rc)" daemon
[ "$(gres doctor.text_rc)" = "$(gres doctor.rc)" ] || bad "thintrim doctor exits $(gres doctor.text_rc), with --json $(gres doctor.rc)"
check_doctor "$o/doctor-local.json" "$(gres doctor_local.rc)" local
# The daemon masked: D-Bus activation fails and the CLI reads the system itself.
# By then part F has fixed /mnt/root: it passes discards again.
check_doctor "$o/doctor-masked.json" "$(gres doctor_masked.rc)" local ok
eq diagnose.rc 0
if [ -s "$o/diagnose.json" ] && jq -e '.type == "a(ssss)"' "$o/diagnose.json" >/dev/null 2>&1; then
    has_finding "$o/diagnose.json" "$diagnose_findings" warning fstrim.timer || bad "Diagnose: no warning for fstrim.timer"
    has_finding "$o/diagnose.json" "$diagnose_findings" warning /etc/crypttab "$name" ||
        bad "Diagnose: no warning for /etc/crypttab naming $name"
else
    bad "Diagnose: no a(ssss) reply in $o/diagnose.json"
fi
crypttab_msg=$(jq -r '[.findings[]? | select(.subject == "/etc/crypttab") | .message] | first // ""' "$o/doctor.json" 2>/dev/null || true)
echo "  /etc/crypttab: $crypttab_msg"
grep -q "$(gres crypttab.line)" <<<"$crypttab_msg" || echo "  note: the message does not give line $(gres crypttab.line)"
# Baseline (part A): healthy stack, fstrim.timer masked, no /etc/crypttab.
f=$o/doctor-before.json
if is_doctor_json "$f"; then
    errors=$(jq '[.findings[] | select(.severity == "error")] | length' "$f")
    [ "$(gres doctor_before.rc)" = $((errors > 0 ? 1 : 0)) ] || bad "doctor-before.json: exit $(gres doctor_before.rc) with $errors error(s)"
    ! has_finding "$f" "$doctor_findings" warning fstrim.timer || bad "doctor-before.json: fstrim.timer warning while it is masked"
    ! has_finding "$f" "$doctor_findings" warning /etc/crypttab || bad "doctor-before.json: /etc/crypttab warning without a crypttab"
    ! has_finding "$f" "$doctor_findings" error /mnt/root || bad "doctor-before.json: error for the healthy /mnt/root"
    echo "  doctor-before.json: exit $(gres doctor_before.rc), $(jq -r '[.findings[].severity] | group_by(.) | map("\(length) \(.[0])") | join(", ")' "$f")"
else
    bad "doctor-before.json: not the doctor's JSON (exit $(gres doctor_before.rc)): $(head -c 200 "$f.err" | tr '\n' ' ')"
fi

# --- F ------------------------------------------------------------------------
echo "F: \`cryptsetup refresh --allow-discards seedcrypt\` (the doctor's hint), LVs reloaded, no remount"
echo "  discard_max_bytes after the refresh: seedcrypt $(gres refresh.crypt_max), vgseed-root $(gres refresh.lv_max)," \
    "vgseed-root after lvchange --refresh $(gres refresh.lv_max_after_lvchange), after dmsetup reload $(gres refresh.lv_max_after_dmsetup)"
eq refresh.eligible_after_trim true
eq refresh.cli_trim.rc 0
check_images "  then \`thintrim trim /mnt/root\`: the 300 MiB of part D are freed" \
    nodisc-base nodisc-written nodisc-trimmed refreshed "$(gres written_bytes.nodisc)" - data0 data1

# --- G ------------------------------------------------------------------------
echo "G: md0 degraded (md/degraded $(gres degraded.md0)), Interval=1min"
eq degraded.md0 1
eq degraded.data.LastTrimResult skipped
msg=$(gres degraded.data.LastTrimMessage)
echo "  /mnt/data scheduled: $(gres degraded.data.LastTrimResult): $msg"
case $msg in "deferred: md0"*degraded*) ;; *) bad "LastTrimMessage does not say md0 is degraded: '$msg'" ;; esac
ge degraded.data.LastTrimStarted "$(gres degraded.since)"
eq degraded.vblk.LastTrimResult success
eq degraded.status.rc 0
grep -qF "/mnt/data: $msg" "$o/degraded-status.txt" || bad "thintrim status does not show '/mnt/data: $msg': $(cat "$o/degraded-status.txt")"
ge degraded.journal 1
eq degraded.manual.rc 0
eq degraded.manual.LastTrimResult success
echo "  thintrim status: $(grep -F deferred "$o/degraded-status.txt" | head -n 2 | tr '\n' ' ')"

echo "timing: image ${image_s}s, run ${run_s}s ($(tr '\t\n' '= ' <"$out/timing.txt"))"
[ "$bad" = 0 ] || fail "see BAD lines above; guest log $o/guest.log, busctl session $o/transcript.txt, daemon journal $o/thintrimd.journal"
echo "PASS ($release): manual and scheduled trims shrank the qcow2s, crypt without discards refused and nothing freed, doctor findings present, scheduled trims deferred on a degraded md0"
