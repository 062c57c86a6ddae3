# shellcheck shell=bash
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
#   require_thintrim     exit 77 (skip) with a message when it was not
#   log MSG / die MSG
#
# thintrim over D-Bus, with busctl as a user types it (see "thintrim helpers"
# below): bus, tt_get, tt_fs_object, tt_wait_trim, tt_wait_idle, now_us,
# save_journal_on_exit.
#
# Scenarios run with `set -euo pipefail` (set here).
set -euo pipefail

: "${THINTRIM_VM_SHARE:=/trimtest}"
: "${THINTRIM_VM_OUT:=$THINTRIM_VM_SHARE/out}"
: "${THINTRIM_VM_CTL:=/dev/ttyS1}"
: "${THINTRIM_VM_ACK_TIMEOUT:=300}"
: "${THINTRIM_INSTALLED:=0}"

log() { local up _; read -r up _ </proc/uptime; printf '[%s] %s\n' "$up" "$*"; }
die() { log "FAIL: $*" >&2; exit 1; }

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

require_thintrim() {
    have_thintrim && return 0
    log "SKIP: scenario $THINTRIM_VM_SCENARIO tests the installed thintrim package, and no .deb was" \
        "given: build one (packaging/build-deb.sh OUTDIR) and pass its absolute path in" \
        "THINTRIM_DEB (meson test) or with run-vm.sh --deb"
    exit 77
}

# --- thintrim helpers ----------------------------------------------------------
TT_DEST=org.thintrim.ThinTrim1
TT_ROOT=/org/thintrim/ThinTrim1
TT_MGR=org.thintrim.ThinTrim1.Manager
TT_FS=org.thintrim.ThinTrim1.Filesystem
_transcript=$THINTRIM_VM_OUT/transcript.txt

# bus CMD...: run a command a user would type (busctl, thintrim, systemctl),
# log it to commands.txt and append "$ CMD", its output (stdout and stderr)
# and a non-zero exit code to out/transcript.txt, the session the README
# quotes. Prints the output; returns the command's exit code.
bus() {
    local rc=0 o
    printf '%s\n' "$*" >>"$_commands"
    log "+ $*" >&2
    o=$("$@" 2>&1) || rc=$?
    {
        printf '$ %s\n' "$*"
        [ -z "$o" ] || printf '%s\n' "$o"
        [ "$rc" = 0 ] || printf '[exit status %s]\n' "$rc"
    } >>"$_transcript"
    [ -z "$o" ] || printf '%s\n' "$o"
    return "$rc"
}

# tt_get OBJECT INTERFACE PROPERTY: the value without its type letter
# ("t 42" -> 42, 's "idle"' -> idle). Not logged: used for polling.
tt_get() {
    local o
    o=$(busctl get-property "$TT_DEST" "$1" "$2" "$3") || return 1
    o=${o#* }
    case $o in \"*\") o=${o#\"}; o=${o%\"} ;; esac
    printf '%s\n' "$o"
}

# tt_fs_object MOUNT [TIMEOUT]: the filesystem's object path from
# Manager.GetFilesystem, waiting up to TIMEOUT s (default 30) for the daemon
# to notice a new mount.
tt_fs_object() {
    local mnt=$1 timeout=${2:-30} o i
    for ((i = 0; i < timeout * 2; i++)); do
        if o=$(busctl call "$TT_DEST" "$TT_ROOT" "$TT_MGR" GetFilesystem s "$mnt" 2>/dev/null); then
            o=${o#o \"}
            printf '%s\n' "${o%\"}"
            return 0
        fi
        sleep 0.5
    done
    busctl call "$TT_DEST" "$TT_ROOT" "$TT_MGR" GetFilesystem s "$mnt" >&2 || true
    die "thintrimd does not manage $mnt after ${timeout}s"
}

# now_us: CLOCK_REALTIME in microseconds, the daemon's time unit.
now_us() { date +%s%6N; }

# tt_wait_trim OBJECT SINCE_US [TIMEOUT]: wait until a trim of the filesystem
# started at or after SINCE_US has finished (LastTrimStarted >= SINCE_US,
# LastTrimFinished >= LastTrimStarted). Polls busctl once a second.
tt_wait_trim() {
    local obj=$1 since=$2 timeout=${3:-300} started finished i
    for ((i = 0; i < timeout; i++)); do
        started=$(tt_get "$obj" "$TT_FS" LastTrimStarted) || started=0
        finished=$(tt_get "$obj" "$TT_FS" LastTrimFinished) || finished=0
        if [ "$started" -ge "$since" ] && [ "$finished" -ge "$started" ]; then
            log "trim of $obj done: started $started, finished $finished, waited ${i}s"
            return 0
        fi
        sleep 1
    done
    die "no trim of $obj finished within ${timeout}s (LastTrimStarted=$started, since $since)"
}

# tt_wait_idle [TIMEOUT]: wait until Manager.State is idle and no job is queued.
tt_wait_idle() {
    local timeout=${1:-300} state queued i
    for ((i = 0; i < timeout; i++)); do
        state=$(tt_get "$TT_ROOT" "$TT_MGR" State) || state="?"
        queued=$(tt_get "$TT_ROOT" "$TT_MGR" QueuedJobs) || queued="?"
        [ "$state" = idle ] && [ "$queued" = 0 ] && return 0
        sleep 1
    done
    die "thintrimd not idle after ${timeout}s (State=$state, QueuedJobs=$queued)"
}

# save_journal_on_exit: out/thintrimd.journal (and the unit's status) when the
# scenario ends, whatever the outcome.
save_journal_on_exit() {
    trap '_save_journal' EXIT
}
_save_journal() {
    journalctl -u thintrimd --no-pager -o short-monotonic >"$THINTRIM_VM_OUT/thintrimd.journal" 2>&1 || true
    systemctl status thintrimd --no-pager >"$THINTRIM_VM_OUT/thintrimd.status" 2>&1 || true
}

# tt_quiet_schedule: a drop-in that keeps the schedule from trimming anything
# during the scenario (BootDelay=1h: never-trimmed filesystems wait an hour,
# trimmed ones a week), then a restart to apply it. dpkg -i has already
# started the daemon with the stock configuration (BootDelay=5min, counted
# from boot: it could fire in the middle of a slow scenario).
tt_quiet_schedule() {
    run mkdir -p /etc/thintrim/thintrim.conf.d
    run_stdin tee /etc/thintrim/thintrim.conf.d/40-vm-quiet.conf <<'QUIET' >/dev/null
# thintrim VM test: no scheduled trim may run between the marks of a scenario.
[Schedule]
BootDelay=1h
QUIET
    run systemctl restart thintrimd
}
