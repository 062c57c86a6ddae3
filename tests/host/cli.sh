#!/bin/bash
# cli.sh -- thintrim-host audit against the fixture roots (tests/host/data):
# the text table and findings, --json's schema checked with jq, the
# Prometheus file, real image files measured, and the clear errors.
# Environment (set by meson): THINTRIM_HOST, THINTRIM_HOST_TEST_DATA.
set -uo pipefail

host=${THINTRIM_HOST:?}
data=${THINTRIM_HOST_TEST_DATA:?}
command -v jq >/dev/null || { echo "SKIP: jq is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 (the fake guest agent) is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
roots=(--pve-dir "$data/pve" --libvirt-dir "$data/libvirt" --proc "$data/proc")

# Text: a table of every disk, then the findings with their fixes. Exit 1:
# there are disks with discard off.
"$host" "${roots[@]}" audit --no-qmp >"$work/text" 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] || fail "audit exited $rc, expected 1 (error findings)"
for expected in \
    'VM  *DISK  *BUS  *FORMAT  *DISCARD' \
    '^100 (web)  *scsi1  *scsi/virtio-scsi-pci  *raw  *ignore' \
    'fix: qm set 100 --scsi1 local-lvm:vm-100-disk-1,iothread=1,size=100G,discard=on, then a full stop/start: qm shutdown 100 && qm start 100' \
    "pending change in .*102.conf" \
    "fix: virsh edit web2: in the <disk> with <target dev='sda'/>, set <driver name='qemu' type='qcow2' discard='unmap' detect_zeroes='unmap'/>" \
    'fix: add discard=unmap,detect-zeroes=unmap to -drive id=drive-virtio1' \
    'SCSI controller lsi53c895a' \
    'running (pid 2102)'; do
    grep -q -- "$expected" "$work/text" || fail "text output lacks: $expected"
done
grep -q sshd "$work/text" && fail "a process that is not QEMU is listed"

# JSON: the stable schema.
"$host" "${roots[@]}" audit --no-qmp --json >"$work/json" 2>"$work/err"
jq -e '.schema == 1 and (.disks | length) == 16' "$work/json" >/dev/null ||
    fail "JSON: schema 1 with 16 disks expected, got $(jq -c '[.schema, (.disks|length)]' "$work/json")"
jq -e '[.disks[] | has("vm") and has("disk") and has("image") and has("bus") and has("discard")
        and has("allocated_bytes") and has("size_bytes") and (.findings | type == "array")] | all' \
    "$work/json" >/dev/null || fail "JSON: a disk lacks a schema key"
jq -e '[.disks[].findings[] | (.message | type == "string") and (.fix | type == "string")] | all' \
    "$work/json" >/dev/null || fail "JSON: a finding lacks message or fix"
jq -e '.disks[] | select(.vm == "102" and .disk == "scsi0") |
        .discard == "ignore" and .pending.discard == "unmap" and .running and .pid == 2102' \
    "$work/json" >/dev/null || fail "JSON: VM 102 scsi0 should run with discard off and a pending change"
jq -e '.disks[] | select(.vm == "103") | .discard == "unmap" and .image == "/dev/pve/vm-103-disk-0"' \
    "$work/json" >/dev/null || fail "JSON: the Proxmox 9 -blockdev disk"

# --vm and --pid narrow it down; a --pid that is not QEMU is an error.
[ "$("$host" "${roots[@]}" audit --no-qmp --json --vm web2 | jq '.disks | length')" = 2 ] ||
    fail "--vm web2 should give 2 disks"
[ "$("$host" "${roots[@]}" audit --no-qmp --json --pid 2103 | jq '.disks | length')" = 1 ] ||
    fail "--pid 2103 should give 1 disk"
if "$host" "${roots[@]}" audit --pid 4000 >/dev/null 2>"$work/err"; then
    fail "--pid of sshd succeeded"
fi
grep -q "not a QEMU system emulator" "$work/err" || fail "--pid 4000: $(cat "$work/err")"

# Real images: a dir storage in a temporary directory, measured.
mkdir -p "$work/vz/images/200" "$work/pve/qemu-server"
printf 'dir: local\n\tpath %s/vz\n\tcontent images\n' "$work" >"$work/pve/storage.cfg"
printf 'name: files\nscsihw: virtio-scsi-single\nscsi0: local:200/vm-200-disk-0.raw,discard=on,size=64M\n' \
    >"$work/pve/qemu-server/200.conf"
truncate -s 64M "$work/vz/images/200/vm-200-disk-0.raw"
dd if=/dev/urandom of="$work/vz/images/200/vm-200-disk-0.raw" bs=1M count=2 conv=notrunc status=none
if command -v qemu-img >/dev/null; then
    qemu-img create -q -f qcow2 "$work/vz/images/200/vm-200-disk-1.qcow2" 1G
    qemu-img snapshot -c before "$work/vz/images/200/vm-200-disk-1.qcow2"
    echo 'virtio1: local:200/vm-200-disk-1.qcow2,discard=on,size=1G' >>"$work/pve/qemu-server/200.conf"
fi
"$host" --pve-dir "$work/pve" --libvirt-dir "$work/none" --proc "$work/none" audit --json \
    --prometheus "$work/metrics.prom" >"$work/real.json" 2>"$work/err"
jq -e '.disks[] | select(.disk == "scsi0") | .size_bytes == 67108864 and .allocated_bytes >= 2097152
        and .allocated_bytes < 4194304 and .image_kind == "raw file"' "$work/real.json" >/dev/null ||
    fail "raw file not measured: $(jq -c '.disks[0]' "$work/real.json")"
if command -v qemu-img >/dev/null; then
    jq -e '.disks[] | select(.disk == "virtio1") | .qcow2_snapshots == 1 and .size_bytes == 1073741824
            and ([.findings[].message | test("1 internal qcow2 snapshot")] | any)' \
        "$work/real.json" >/dev/null || fail "qcow2 snapshot not found: $(jq -c '.disks[1]' "$work/real.json")"
fi
grep -q '^thintrim_host_disk_allocated_bytes{vm="200",disk="scsi0",image=".*vm-200-disk-0.raw"} [0-9]' \
    "$work/metrics.prom" || fail "metrics file: $(cat "$work/metrics.prom")"
[ "$(stat -c %a "$work/metrics.prom")" = 644 ] || fail "metrics file is not world-readable"

# prove: a VM that does not run, a socket that is not there.
if "$host" "${roots[@]}" prove 100 >/dev/null 2>"$work/err"; then
    fail "prove of a stopped VM succeeded"
fi
grep -q "VM 100 is not running" "$work/err" || fail "prove 100: $(cat "$work/err")"
if "$host" "${roots[@]}" prove 102 --timeout 1s >/dev/null 2>"$work/err"; then
    fail "prove without an agent socket succeeded"
fi
grep -q "guest agent socket /var/run/qemu-server/102.qga" "$work/err" ||
    fail "prove 102: $(cat "$work/err")"

# libvirt's sockets are libvirtd's (fd= on the command line): said so.
if "$host" "${roots[@]}" prove web2 >/dev/null 2>"$work/err"; then
    fail "prove of a libvirt VM without sockets succeeded"
fi
grep -q "libvirt keeps the guest agent and QMP of VM web2 to itself" "$work/err" ||
    fail "prove web2: $(cat "$work/err")"

# vzdump-hook: vzdump's calls, against the FAKE guest agent. Every outcome
# exits 0 (a failing hook would fail the backup); only backup-start acts.
{
    here=$(dirname "$0")
    agent() { # FAKE_TRIMMED: a fake agent on $work/qga.sock, until its client leaves
        rm -f "$work/qga.sock"
        python3 "$here/fake-guest-agent.py" "$work/qga.sock" "$1" &
        agent_pid=$!
        for _ in $(seq 50); do [ -S "$work/qga.sock" ] && return; sleep 0.1; done
        fail "the fake guest agent did not start"
    }
    agent 5368709120
    VMTYPE=qemu "$host" vzdump-hook --qga "$work/qga.sock" backup-start snapshot 100 >"$work/hook" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || fail "vzdump-hook backup-start exited $rc"
    grep -q '^thintrim-host: VM 100: the guest trimmed 5.0 GiB on 1 filesystem(s) in [0-9.]*s (`fstrim -av`) before the snapshot backup$' \
        "$work/hook" || fail "vzdump-hook backup-start: $(cat "$work/hook")"
    wait "$agent_pid" 2>/dev/null
    # Phases without work, or a container: nothing asked of any agent.
    for phase in "job-init" "job-start" "job-end" "job-abort" "backup-end stop 100" "log-end stop 100" "pre-stop stop 100"; do
        # shellcheck disable=SC2086 # the phase's arguments, split on purpose
        "$host" vzdump-hook --qga "$work/nothing.sock" $phase >"$work/hook" 2>&1 ||
            fail "vzdump-hook $phase exited non-zero"
        [ -s "$work/hook" ] && fail "vzdump-hook $phase printed: $(cat "$work/hook")"
    done
    VMTYPE=lxc "$host" vzdump-hook backup-start snapshot 101 >"$work/hook" 2>&1 || fail "lxc: non-zero exit"
    grep -q "VM 101 is a lxc guest, not QEMU" "$work/hook" || fail "lxc: $(cat "$work/hook")"
    # No agent: logged, exit 0, the backup goes on.
    "$host" vzdump-hook --qga "$work/nothing.sock" backup-start stop 102 >"$work/hook" 2>&1 ||
        fail "vzdump-hook without an agent exited non-zero"
    grep -q "VM 102: no trim before the backup after .*nothing.sock.*; the stop backup goes on" "$work/hook" ||
        fail "no agent: $(cat "$work/hook")"
    # A stuck agent: bounded by --timeout, exit 0.
    FAKE_AGENT_NEVER_ANSWER=1 agent 0
    start=$(date +%s)
    "$host" vzdump-hook --qga "$work/qga.sock" --timeout 1s backup-start snapshot 103 >"$work/hook" 2>&1 ||
        fail "vzdump-hook with a stuck agent exited non-zero"
    [ $(($(date +%s) - start)) -le 10 ] || fail "vzdump-hook waited $(($(date +%s) - start))s on a stuck agent with --timeout 1s"
    grep -q "VM 103: no trim before the backup after .*guest agent.*; the snapshot backup goes on" "$work/hook" ||
        fail "stuck agent: $(cat "$work/hook")"
    kill "$agent_pid" 2>/dev/null
    wait "$agent_pid" 2>/dev/null
    # The installed wrapper vzdump runs: the phase passes through, exit 0 even when
    # thintrim-host fails (here: an --trim-timeout it rejects).
    sed "s|^@BINDIR@/thintrim-host|$host|" "$here/../../src/host/vzdump-hook.in" >"$work/vzdump-hook"
    chmod +x "$work/vzdump-hook"
    THINTRIM_VZDUMP_TRIM_TIMEOUT=soon "$work/vzdump-hook" backup-start snapshot 104 >"$work/hook" 2>&1 ||
        fail "the wrapper exited non-zero"
    grep -q "the backup goes on" "$work/hook" || fail "wrapper with a bad timeout: $(cat "$work/hook")"
}

# Usage errors exit 2.
"$host" audit --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "an unknown option should exit 2"

[ "$failures" -eq 0 ] || exit 1
echo "host-cli: all checks passed"
