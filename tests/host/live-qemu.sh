#!/bin/bash
# live-qemu.sh -- thintrim-host against a real QEMU on this machine: a
# paused qemu-system-x86_64 (TCG, no guest) with a qcow2 disk discard=unmap
# and a raw disk discard=ignore and a QMP socket. `audit --pid` must name the
# discard=ignore disk with its fix and read QEMU's unmap counters over QMP;
# `prove` runs against the real QMP socket and a FAKE guest agent
# (fake-guest-agent.py: no guest exists here) and must judge "guest stack":
# the "guest" reports bytes trimmed, QEMU received none.
# Exit 77 without qemu-system-x86_64, qemu-img, jq or python3.
# Environment (set by meson): THINTRIM_HOST.
set -uo pipefail

host=${THINTRIM_HOST:?}
here=$(cd "$(dirname "$0")" && pwd)
for tool in qemu-system-x86_64 qemu-img jq python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
work=$(mktemp -d /tmp/thintrim-host-live.XXXXXX)
qemu_pid=''
agent_pid=''
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# A FAKE agent on $work/qga.sock (arguments: bytes its fstrim reports),
# started fresh for each prove: it serves one connection.
start_agent() {
    stop_agent
    rm -f "$work/qga.sock"
    python3 "$here/fake-guest-agent.py" "$work/qga.sock" "$1" &
    agent_pid=$!
    for _ in $(seq 50); do
        [ -S "$work/qga.sock" ] && return
        sleep 0.1
    done
    fail "the fake agent did not start"
}
stop_agent() {
    if [ -n "$agent_pid" ]; then
        kill "$agent_pid" 2>/dev/null
        wait "$agent_pid" 2>/dev/null
        agent_pid=''
    fi
}

qemu-img create -q -f qcow2 "$work/unmap.qcow2" 64M
qemu-img create -q -f raw "$work/ignore.raw" 32M
qemu-system-x86_64 -accel tcg -nographic -display none -S -m 32 -nodefaults \
    -name livetest,debug-threads=on \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" \
    -qmp "unix:$work/hmp.sock,server=on,wait=off" \
    -device virtio-scsi-pci,id=scsihw0 \
    -drive "file=$work/unmap.qcow2,if=none,id=drive-scsi0,format=qcow2,discard=unmap,detect-zeroes=unmap" \
    -device scsi-hd,bus=scsihw0.0,drive=drive-scsi0,id=scsi0 \
    -blockdev "{\"driver\":\"file\",\"filename\":\"$work/ignore.raw\",\"node-name\":\"raw-storage\",\"discard\":\"ignore\"}" \
    -blockdev '{"node-name":"raw-format","driver":"raw","file":"raw-storage"}' \
    -device '{"driver":"virtio-blk-pci","drive":"raw-format","id":"virtio1"}' \
    >"$work/qemu.log" 2>&1 &
qemu_pid=$!
for _ in $(seq 50); do
    [ -S "$work/qmp.sock" ] && break
    sleep 0.1
done
[ -S "$work/qmp.sock" ] || { echo "FAIL: qemu did not start" >&2; exit 1; }

none="$work/none"
"$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc audit --pid "$qemu_pid" --json \
    >"$work/audit.json" 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] || fail "audit exited $rc, expected 1 (discard=ignore is an error): $(cat "$work/err")"
jq -e '.disks | length == 2' "$work/audit.json" >/dev/null || fail "expected 2 disks: $(cat "$work/audit.json")"
jq -e '.disks[] | select(.disk == "scsi0") | .discard == "unmap" and .format == "qcow2"
        and .unmap_bytes == 0 and (.qemu_version | startswith("7.") or startswith("8.") or startswith("9.") or startswith("10."))
        and .findings == [] and .size_bytes == 67108864' \
    "$work/audit.json" >/dev/null || fail "scsi0: $(jq -c '.disks[] | select(.disk == "scsi0")' "$work/audit.json")"
jq -e '.disks[] | select(.disk == "virtio1") | .discard == "ignore" and .unmap_bytes == 0
        and ([.findings[] | (.message | test("discard is off")) and
              (.fix | test("\"discard\":\"unmap\" to every -blockdev node of raw-format"))] | any)' \
    "$work/audit.json" >/dev/null || fail "virtio1: $(jq -c '.disks[] | select(.disk == "virtio1")' "$work/audit.json")"

"$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc audit --pid "$qemu_pid" >"$work/audit.txt"
grep -q "QEMU has received 0 B of discards" "$work/audit.txt" || fail "text: no QMP counters"
cat "$work/audit.txt"

# A socket this user may not open: QEMU's QMP socket is root's, 0755.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod 755 "$work"
    if setpriv --reuid=65534 --regid=65534 --clear-groups "$host" --pve-dir "$none" \
        --libvirt-dir "$none" --proc /proc prove livetest --pid "$qemu_pid" \
        --qmp "$work/qmp.sock" --qga "$work/qmp.sock" >/dev/null 2>"$work/err"; then
        fail "prove as nobody succeeded"
    fi
    grep -q "may not open the guest agent socket $work/qmp.sock" "$work/err" ||
        fail "as nobody: $(cat "$work/err")"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$host" --pve-dir "$none" \
        --libvirt-dir "$none" --proc /proc audit --pid "$qemu_pid" --json >"$work/nobody.json" 2>&1
    jq -e '[.disks[].qmp_error | test("may not open the QMP socket")] | all' "$work/nobody.json" \
        >/dev/null || fail "audit as nobody: $(cat "$work/nobody.json")"
    chmod 700 "$work"
fi

# prove: real QMP, FAKE agent.
start_agent 1073741824
"$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc prove livetest --pid "$qemu_pid" \
    --qmp "$work/qmp.sock" --qga "$work/qga.sock" --json --prometheus "$work/prove.prom" \
    >"$work/prove.json" 2>"$work/err"
rc=$?
[ "$rc" -eq 1 ] || fail "prove exited $rc, expected 1 (space did not come back): $(cat "$work/err")"
# No guest-get-fsinfo in this agent: each disk is judged by the guest's
# total. scsi0 counts discards (none came); virtio-blk's QEMU does not count
# them, so its verdict comes from discard=ignore and the allocation.
jq -e '.guest.command == "fstrim -av" and .guest.trimmed_bytes == 1073741824
        and (.guest.fsinfo_error | test("guest-get-fsinfo"))
        and (.disks | length) == 2
        and (.disks[] | select(.disk == "scsi0") | .verdict == "guest stack"
             and .qemu_received_bytes == 0 and .qemu_received_operations == 0
             and .unmap_bytes == 0 and .unmap_operations == 0 and .guest_trimmed_bytes == null)
        and (.disks[] | select(.disk == "virtio1") | .verdict == "qemu discard=ignore"
             and .qemu_counts_discards == false and .qemu_received_bytes == null
             and (.explanation | test("does not count virtio-blk discards")))' \
    "$work/prove.json" >/dev/null || fail "prove: $(cat "$work/prove.json")"
grep -q 'thintrim_host_prove_verdict{.*disk="scsi0".*layer="guest stack"} 1' "$work/prove.prom" ||
    fail "prove metrics: $(cat "$work/prove.prom")"

# With guest-get-fsinfo: the trimmed "/" is on the guest disk whose serial
# is scsi0's drive id (as a scsi-hd on -drive shows it to udev), nothing was
# trimmed on virtio1.
export FAKE_AGENT_FSINFO='[{"name": "sda1", "mountpoint": "/", "type": "ext4", "disk": [
    {"serial": "0QEMU_QEMU_HARDDISK_drive-scsi0", "bus-type": "scsi", "dev": "/dev/sda"}]}]'
start_agent 1073741824
"$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc prove livetest --pid "$qemu_pid" \
    --qmp "$work/qmp.sock" --qga "$work/qga.sock" --json >"$work/prove-placed.json" 2>"$work/err"
jq -e '.guest.fsinfo_error == null and .guest.unplaced_trimmed_bytes == 0
        and (.disks[] | select(.disk == "scsi0") | .verdict == "guest stack"
             and .guest_trimmed_bytes == 1073741824 and .guest_mount_points == ["/"])
        and (.disks[] | select(.disk == "virtio1") | .verdict == "nothing trimmed"
             and .guest_trimmed_bytes == 0)' \
    "$work/prove-placed.json" >/dev/null || fail "prove with fsinfo: $(cat "$work/prove-placed.json" "$work/err")"
unset FAKE_AGENT_FSINFO

# prove with space that comes back: 4 MiB written into the qcow2 through
# QEMU, and the FAKE agent's "fstrim" discards them through QEMU's block
# layer (HMP qemu-io on a second QMP socket), so the image really shrinks.
hmp() {
    python3 - "$work/hmp.sock" "$1" <<'PY'
import json, socket, sys
qmp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
qmp.connect(sys.argv[1])
lines = qmp.makefile("rwb")
lines.readline()
for request in ({"execute": "qmp_capabilities"},
                {"execute": "human-monitor-command", "arguments": {"command-line": sys.argv[2]}}):
    lines.write(json.dumps(request).encode() + b"\n")
    lines.flush()
    lines.readline()
PY
}
export FAKE_AGENT_HMP_SOCKET="$work/hmp.sock" FAKE_AGENT_DISCARD="drive-scsi0 4M"
hmp 'qemu-io drive-scsi0 "write -P 0x55 0 4M"'
start_agent 4194304
"$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc prove livetest --pid "$qemu_pid" \
    --qmp "$work/qmp.sock" --qga "$work/qga.sock" --json >"$work/prove2.json" 2>"$work/err"
jq -e '.disks[] | select(.disk == "scsi0") | .verdict == "none" and .released_bytes >= 4000000
        and .allocated_bytes_before > .allocated_bytes_after' "$work/prove2.json" >/dev/null ||
    fail "prove with space coming back: $(cat "$work/prove2.json" "$work/err")"
hmp 'qemu-io drive-scsi0 "write -P 0x55 0 4M"'
start_agent 4194304
"$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc prove livetest --pid "$qemu_pid" \
    --qmp "$work/qmp.sock" --qga "$work/qga.sock" >"$work/prove2.txt" 2>"$work/err"
grep -q "^scsi0: the image gave back 4.0 MiB" "$work/prove2.txt" ||
    fail "prove text: $(cat "$work/prove2.txt" "$work/err")"
cat "$work/prove2.txt"
unset FAKE_AGENT_HMP_SOCKET FAKE_AGENT_DISCARD
stop_agent

# A last prove: no agent behind the socket.
stop_agent
if "$host" --pve-dir "$none" --libvirt-dir "$none" --proc /proc prove livetest --pid "$qemu_pid" \
    --qmp "$work/qmp.sock" --qga "$work/qga.sock" --timeout 1s >/dev/null 2>"$work/err"; then
    fail "prove without an agent succeeded"
fi
grep -q "guest agent" "$work/err" || fail "no agent: $(cat "$work/err")"

[ "$failures" -eq 0 ] || exit 1
echo "host-qemu: all checks passed"
