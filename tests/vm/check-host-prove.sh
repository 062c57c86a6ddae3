# check-host-prove.sh -- the thintrim-host assertions of vm-disk-kinds (issue
# 18), sourced by test-disk-kinds.sh after its own (needs $out, $o and the
# functions bad, fail, gres, alloc, mib, pct of the test and host-lib.sh).
# shellcheck shell=bash disable=SC2154
#
# guest/host-prove.sh wrote and deleted 256 MiB on a fresh ext4 on data1
# (discard=unmap) and on ignore-scsi (discard=ignore) and stopped at the mark
# host-prove, where host-prove-hook.sh ran on the host:
#
#  audit  `thintrim-host audit --pid QEMU --json`: ignore-scsi has an error
#         finding whose fix adds discard=unmap to its -drive; data1 has none.
#  prove  `thintrim-host prove thintrim-vm --pid QEMU --qga --qmp --json`:
#         the guest's agent ran thintrim (exit 0 in the guest), the trimmed
#         bytes cover what was deleted; data1 gave back >= 80% of the 256 MiB
#         (verdict none), ignore-scsi gave back 0 although QEMU received the
#         discards (verdict "qemu discard=ignore", named in the explanation);
#         the host's own samples agree. Each disk carries only its own
#         filesystem's trim (guest-get-fsinfo serials): none blames the guest
#         stack; nodisc-vblk (discard=off) and nodisc-scsi
#         (discard_granularity=0) get "nothing trimmed", and audit names
#         those device options with their removal.
#  vzdump the vzdump hook at the mark vzdump-hook (see the end).
# A missing hook run, JSON or field fails the test: never a silent pass.

hp=$out/host-prove
echo "thintrim-host (issue 18): audit and prove at the mark host-prove ($(grep -c '^=== mark host-prove:' "$out/on-mark.log" 2>/dev/null) hook run)"
grep -A1000 '^=== mark host-prove at' "$out/on-mark.log" 2>/dev/null | sed -n '1,/^=== mark host-prove:/p' | sed 's/^/  hook| /'
[ -s "$hp/audit.json" ] || fail "no $hp/audit.json: the on-mark hook did not run thintrim-host audit (see $out/on-mark.log)"
[ -s "$hp/prove.json" ] || fail "no $hp/prove.json: thintrim-host prove failed (see $out/on-mark.log, $hp/prove.stderr)"
jq -e . "$hp/audit.json" >/dev/null || fail "$hp/audit.json is not JSON"
jq -e . "$hp/prove.json" >/dev/null || fail "$hp/prove.json is not JSON"
echo "  guest: qemu-guest-agent $(gres prove.qga_active); qemu pid $(cat "$hp/qemu.pid")"

# A disk of either report by its image file.
hp_disk() { # FILE IMAGE-BASENAME -> the disk's JSON object (fails without one)
    jq -e --arg b "/$2" '[.disks[] | select(.image | endswith($b))] | if length == 1 then .[0] else error("not one disk") end' "$1" ||
        fail "$1: no single disk with the image $2"
}

echo "audit (exit $(cat "$hp/audit.rc")): the discard=ignore disk is named with its fix"
audit_ignore=$(hp_disk "$hp/audit.json" ignore-scsi.qcow2)
audit_unmap=$(hp_disk "$hp/audit.json" data1.qcow2)
jq -r '"  \(.disk): discard=\(.discard)" , (.findings[] | "    \(.severity): \(.message)\n      fix: \(.fix)")' <<<"$audit_ignore"
[ "$(jq -r .discard <<<"$audit_ignore")" = ignore ] || bad "audit: ignore-scsi discard is $(jq -r .discard <<<"$audit_ignore"), want ignore"
[ "$(jq -r .running <<<"$audit_ignore")" = true ] || bad "audit: ignore-scsi not seen as running"
jq -e '[.findings[] | select(.severity == "error" and (.message | test("discard=ignore")) and (.fix | test("discard=unmap")))] | length == 1' \
    <<<"$audit_ignore" >/dev/null || bad "audit: ignore-scsi has no error finding naming discard=ignore with a fix that sets discard=unmap"
jq -e '[.findings[] | select(.severity == "error")] | length == 0' <<<"$audit_unmap" >/dev/null ||
    bad "audit: data1 (discard=unmap) has an error finding: $(jq -c .findings <<<"$audit_unmap")"
[ "$(cat "$hp/audit.rc")" = 1 ] || bad "audit exited $(cat "$hp/audit.rc"), want 1 (a disk cannot give space back)"

prove_written=$(gres prove.written_bytes)
echo "prove (exit $(cat "$hp/prove.rc"), $(cat "$hp/prove.seconds")s): $(mib "$prove_written") MiB written and deleted on each disk"
jq -r '"  guest: `\(.guest.command)` exit \(.guest.exit_code), trimmed \(.guest.trimmed_bytes) bytes, reached \(.guest.reached_disk_bytes)" , (.guest.filesystems[] | "    \(.mount_point): \(.trimmed_bytes) trimmed, \(.reached_disk_bytes) reached")' "$hp/prove.json"
[ "$(jq -r .guest.exit_code "$hp/prove.json")" = 0 ] || bad "prove: the guest's command exited $(jq -r .guest.exit_code "$hp/prove.json")"
jq -e '.guest.command | startswith("thintrim trim")' "$hp/prove.json" >/dev/null ||
    bad "prove: the guest ran $(jq -r .guest.command "$hp/prove.json"), not thintrim"
for m in /mnt/prove-unmap /mnt/prove-ignore; do
    t=$(jq -r --arg m "$m" '[.guest.filesystems[] | select(.mount_point == $m) | .trimmed_bytes] | add // 0' "$hp/prove.json")
    [ "$t" -ge $((prove_written * 9 / 10)) ] || bad "prove: the guest trimmed $t bytes of $m, less than 90% of the $prove_written deleted"
done
# Device-level discard off (nodisc-vblk: virtio-blk discard=off;
# nodisc-scsi: discard_granularity=0): audit names the device option and
# its removal; prove finds nothing trimmed in the guest on them.
for image in nodisc-vblk:discard=off nodisc-scsi:discard_granularity=0; do
    d=$(hp_disk "$hp/audit.json" "${image%%:*}.qcow2")
    jq -e --arg o "${image#*:}" '.device_discard_off == $o and
        ([.findings[] | select(.severity == "error" and (.message | contains($o)) and (.fix | contains("remove " + $o)))] | length == 1)' \
        <<<"$d" >/dev/null || bad "audit: ${image%%:*} lacks the error naming ${image#*:} with its removal: $(jq -c '{device_discard_off, findings}' <<<"$d")"
    p=$(hp_disk "$hp/prove.json" "${image%%:*}.qcow2")
    echo "  prove ${image%%:*}: $(jq -r '"\(.verdict): \(.explanation)"' <<<"$p")"
    [ "$(jq -r .verdict <<<"$p")" = "nothing trimmed" ] || bad "prove: ${image%%:*} verdict $(jq -r .verdict <<<"$p"), want 'nothing trimmed'"
done
# Each disk is judged by what the guest trimmed on it: none blames the
# guest stack (nothing in this guest drops discards), and the two proving
# disks carry their own filesystem's trim.
jq -e '[.disks[] | select(.verdict == "guest stack")] | length == 0' "$hp/prove.json" >/dev/null ||
    bad "prove: a disk blames the guest stack: $(jq -c '[.disks[] | select(.verdict == "guest stack") | {disk, image, guest_trimmed_bytes, explanation}]' "$hp/prove.json")"
for pair in data1:/mnt/prove-unmap ignore-scsi:/mnt/prove-ignore; do
    d=$(hp_disk "$hp/prove.json" "${pair%%:*}.qcow2")
    jq -e --arg m "${pair#*:}" --argjson w "$prove_written" '.guest_mount_points == [$m] and .guest_trimmed_bytes >= ($w * 9 / 10)' <<<"$d" >/dev/null ||
        bad "prove: ${pair%%:*} should carry ${pair#*:}'s trim alone: $(jq -c '{guest_mount_points, guest_trimmed_bytes}' <<<"$d")"
    jq -e '.unmap_operations > 0 and .qemu_received_operations > 0' <<<"$d" >/dev/null ||
        bad "prove: ${pair%%:*}: QEMU's discard requests not counted: $(jq -c '{unmap_operations, qemu_received_operations}' <<<"$d")"
done
[ "$(cat "$hp/prove.rc")" = 1 ] || bad "prove exited $(cat "$hp/prove.rc"), want 1 (the discard=ignore disk gives nothing back)"
for image in data1 ignore-scsi; do
    d=$(hp_disk "$hp/prove.json" "$image.qcow2")
    released=$(jq -r '.released_bytes // "null"' <<<"$d")
    received=$(jq -r '.qemu_received_bytes // "null"' <<<"$d")
    verdict=$(jq -r .verdict <<<"$d")
    explanation=$(jq -r .explanation <<<"$d")
    before=$(alloc prove-written "${image}"); deleted=$(alloc host-prove "$image"); after=$(alloc prove-trimmed "$image")
    echo "  $image: QEMU received $received bytes, the image gave back $released bytes ($(pct "${released/null/0}" "$prove_written")% of the deleted); verdict $verdict: $explanation"
    echo "    host samples: written $(mib "$before") -> deleted $(mib "$deleted") -> after prove $(mib "$after") MiB"
    [ "$received" != null ] || { bad "prove: $image: QEMU's counters were not read"; continue; }
    [ "$released" != null ] || { bad "prove: $image: the image's allocation was not measured"; continue; }
    [ "$received" -ge $((prove_written * 9 / 10)) ] || bad "prove: $image: QEMU received $received bytes, less than 90% of the $prove_written deleted"
    case $image in
    data1)
        [ $((released * 5)) -ge $((prove_written * 4)) ] || bad "prove: data1 gave back $(mib "$released") MiB, less than 80% of the $(mib "$prove_written") MiB deleted"
        [ "$verdict" = none ] || bad "prove: data1 verdict '$verdict', want none"
        [ $(( (deleted - after) * 5)) -ge $((prove_written * 4)) ] || bad "host: data1 fell only $(mib $((deleted - after))) MiB across prove" ;;
    ignore-scsi)
        [ "$released" = 0 ] || bad "prove: ignore-scsi gave back $released bytes, want 0"
        [ "$verdict" = "qemu discard=ignore" ] || bad "prove: ignore-scsi verdict '$verdict', want 'qemu discard=ignore'"
        grep -q 'discard=ignore' <<<"$explanation" || bad "prove: the ignore-scsi explanation does not name discard=ignore"
        [ "$after" = "$deleted" ] || bad "host: ignore-scsi changed across prove ($(mib "$deleted") -> $(mib "$after") MiB)" ;;
    esac
done

# Proxmox VE's vzdump hook (issue 19), called by the on-mark hook at the mark
# vzdump-hook as vzdump calls it (backup-start snapshot 100): it exits 0,
# logs the guest's trim, and data1's image gives back >= 80% of the 256 MiB
# written and deleted again before it.
echo "vzdump hook (issue 19): \`thintrim-host vzdump-hook backup-start snapshot 100\` at the mark vzdump-hook"
if [ ! -s "$hp/vzdump-hook.rc" ]; then
    fail "no $hp/vzdump-hook.rc: the on-mark hook did not run the vzdump hook (see $out/on-mark.log)"
else
    sed 's/^/  hook| /' "$hp/vzdump-hook.out"
    [ "$(cat "$hp/vzdump-hook.rc")" = 0 ] || bad "vzdump-hook exited $(cat "$hp/vzdump-hook.rc"), want 0"
    grep -q '^thintrim-host: VM 100: the guest trimmed .* (`thintrim trim [^`]*`) before the snapshot backup$' "$hp/vzdump-hook.out" ||
        bad "vzdump-hook did not log a trim by thintrim in the guest: $(cat "$hp/vzdump-hook.out")"
    hook_before=$(alloc vzdump-hook data1); hook_after=$(alloc vzdump-after data1)
    echo "  data1: $(mib "$hook_before") MiB before the hook -> $(mib "$hook_after") MiB after"
    [ $(( (hook_before - hook_after) * 5)) -ge $((prove_written * 4)) ] ||
        bad "vzdump-hook: data1 fell only $(mib $((hook_before - hook_after))) MiB, less than 80% of the $(mib "$prove_written") MiB deleted"
fi
