# lib.sh -- helpers for guest scenarios (tests/vm/scenarios/*.sh). Sourced
# INSIDE the guest:   . /trimtest/guest/lib.sh
#
#   mark NAME            sync, ask the host to sample every disk image, wait for its ack
#   run CMD...           log CMD to out/commands.txt and run it (fails the scenario on error)
#   run_stdin CMD... <<EOF   the same, with a here-document (logged too)
#   disk_by_serial S     /dev/NAME of the disk whose serial is S (trimdata0, trimvblk0, ...)
#   result KEY VALUE     append "KEY<TAB>VALUE" to out/guest-results.tsv (the host may assert on it)
#   capture NAME         sysfs/proc capture in the fixture format -> out/NAME.tar.gz
#   have_thintrim        true when the thintrim .deb was installed at boot
#   log MSG / die MSG
#
# Scenarios run with `set -euo pipefail` (set here).
set -euo pipefail

: "${THINTRIM_VM_SHARE:=/trimtest}"
: "${THINTRIM_VM_OUT:=$THINTRIM_VM_SHARE/out}"
: "${THINTRIM_VM_CTL:=/dev/ttyS1}"
: "${THINTRIM_VM_ACK_TIMEOUT:=300}"
: "${THINTRIM_INSTALLED:=0}"

log() { local up _; read -r up _ </proc/uptime; printf '[%s] %s\n' "$up" "$*"; }
die() { log "FAIL: $*"; exit 1; }

have_thintrim() { [ "$THINTRIM_INSTALLED" = 1 ] && command -v thintrim >/dev/null; }

_commands=$THINTRIM_VM_OUT/commands.txt

run() {
    printf '%s\n' "$*" >>"$_commands"
    log "+ $*" >&2
    "$@"
}

run_stdin() {
    local input
    input=$(cat)
    printf '%s <<EOF\n%s\nEOF\n' "$*" "$input" >>"$_commands"
    { log "+ $* <<EOF"; printf '%s\n' "$input"; log "EOF"; } >&2
    printf '%s\n' "$input" | "$@"
}

# mark NAME: the host/guest handshake (see tests/vm/README.md).
#  1. sync: every write the scenario made has reached qemu (and qemu has
#     flushed it to the image file: a guest flush is an fdatasync on the host).
#     Discards (fstrim, blkdiscard) are synchronous in the guest, and qemu's
#     qcow2 driver punches the hole before completing the request.
#  2. "@@THINTRIM MARK NAME" on the control port /dev/ttyS1.
#  3. The host samples every image file (allocated bytes) until two samples
#     agree, writes the results, then creates $share/ack/NAME.
#  4. We wait for that file, so the scenario never changes a disk while the
#     host is still measuring.
mark() {
    local name=$1 waited=0
    [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "mark: bad name '$name'"
    sync
    log "MARK $name"
    echo "@@THINTRIM MARK $name" >"$THINTRIM_VM_CTL"
    while [ ! -e "$THINTRIM_VM_SHARE/ack/$name" ]; do
        sleep 0.2
        waited=$((waited + 1))
        [ "$waited" -lt $((THINTRIM_VM_ACK_TIMEOUT * 5)) ] || die "mark $name: no ack from the host"
    done
    log "MARK $name acknowledged"
}

disk_by_serial() {
    local serial=$1 name _
    for _ in $(seq 50); do
        name=$(lsblk -dn -o NAME,SERIAL | awk -v s="$serial" '$2 == s {print $1; exit}')
        [ -n "$name" ] && { echo "/dev/$name"; return 0; }
        udevadm settle -t 5 || true
        sleep 0.2
    done
    die "no disk with serial $serial"
}

result() {
    printf '%s\t%s\n' "$1" "$2" >>"$THINTRIM_VM_OUT/guest-results.tsv"
    log "result $1 = $2"
}

capture() {
    bash "$THINTRIM_VM_SHARE/guest/capture-sysfs.sh" "$THINTRIM_VM_OUT/$1.tar.gz"
}
