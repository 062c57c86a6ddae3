#!/bin/bash
# run-vm.sh -- boot the test guest once and run one scenario in it.
#
#   tests/vm/run-vm.sh [options] SCENARIO
#
# SCENARIO is tests/vm/scenarios/SCENARIO.sh (runs inside the guest).
#
# Options (environment in brackets):
#   --release R     the guest: bookworm (Debian 12) or trixie (Debian 13)
#                   [THINTRIM_VM_RELEASE, default bookworm]
#   --out DIR       results and logs [THINTRIM_VM_OUT, default $TMPDIR/thintrim-vm-out/SCENARIO]
#   --deb FILE      thintrim .deb to install in the guest before the scenario,
#                   built on the guest's release [bookworm: THINTRIM_DEB,
#                   trixie: THINTRIM_DEB_TRIXIE]
#   --disk KIND     add an extra disk (repeatable; a scenario can also list them
#                   on a "# vm-disks: KIND..." line):
#                     nodisc-vblk  virtio-blk with discard=off on the device
#                                  (guest: discard_max_bytes=0)
#                     nodisc-scsi  scsi-hd with discard_granularity=0
#                                  (guest: provisioning_mode=full)
#                     ignore-scsi  scsi-hd on a -drive discard=ignore: the guest
#                                  sees an unmap disk, the qcow2 never shrinks (the trap)
#                     scsi         one more scsi-hd like trimdata0/1 (serial trimdataN)
#                   (and a "# vm-share: FILE..." line copies those files of the
#                   source tree to /trimtest/guest/ for the scenario to source)
#   --timeout SEC   whole run, boot to poweroff [THINTRIM_VM_TIMEOUT, default 1200]
#   --keep          keep the disk images and the root overlay [THINTRIM_VM_KEEP=1]
#   --on-mark SCRIPT  at each mark, after the host sampled the images and before
#                   the guest may go on, run `SCRIPT MARKNAME` on the host with
#                   THINTRIM_VM_QMP, THINTRIM_VM_QGA (the sockets below) and
#                   THINTRIM_VM_OUT set; its output and exit status go to
#                   on-mark.log; a failure (or 120 s timeout) does not end the run
#                   [THINTRIM_VM_ON_MARK]
#   [THINTRIM_VM_CACHE]  image cache root of build-image.sh (built/refreshed first)
#
# Always present: root (virtio-blk, qcow2 overlay on the cached image, /dev/vda),
# trimdata0 and trimdata1 (4 GiB qcow2, 64k clusters, scsi-hd on virtio-scsi,
# -drive discard=unmap,cache=writeback), trimvblk0 (the same on virtio-blk),
# the 9p share (tag thintrim, /trimtest in the guest), a QMP socket (qmp.sock)
# and the guest agent's virtio-serial channel (qga.sock, org.qemu.guest_agent.0;
# qemu-guest-agent runs in the guest).
#
# Output in --out: console.log (ttyS0: kernel + scenario output), control.log
# (ttyS1: the marker protocol), results.tsv (mark, disk, allocated bytes of the
# image file, virtual size, seconds since boot), disks.tsv, qemu.cmd, timing.txt
# (with the release), qmp.sock, qga.sock, on-mark.log (with --on-mark),
# share/out/ (what the guest wrote: guest.log, commands.txt, captures...).
#
# Exit: the scenario's exit code; 124 timeout; 3 guest died without reporting;
# 2 harness error; 77 not root / tools missing.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
release=${THINTRIM_VM_RELEASE:-bookworm}
out=${THINTRIM_VM_OUT:-}
deb=
deb_given=0
on_mark_script=${THINTRIM_VM_ON_MARK:-}
timeout_s=${THINTRIM_VM_TIMEOUT:-1200}
keep=${THINTRIM_VM_KEEP:-0}
extra=()
scenario=

usage() { sed -n '2,50p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --release) release=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --deb) deb=$2; deb_given=1; shift 2 ;;
    --on-mark) on_mark_script=$2; shift 2 ;;
    --disk) extra+=("$2"); shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    -*) echo "run-vm: unknown option $1" >&2; usage ;;
    *) [ -z "$scenario" ] || usage; scenario=$1; shift ;;
    esac
done
[ -n "$scenario" ] || usage

say() { printf 'run-vm: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# The .deb must be built on the guest's release (its Depends: name that
# release's library sonames), hence one variable per release.
case $release in
bookworm) deb_var=THINTRIM_DEB ;;
trixie) deb_var=THINTRIM_DEB_TRIXIE ;;
*) die "unknown release '$release' (bookworm or trixie)" ;;
esac
if [ "$deb_given" = 0 ]; then
    deb=${!deb_var:-}
    if [ -z "$deb" ] && [ "$deb_var" != THINTRIM_DEB ] && [ -n "${THINTRIM_DEB:-}" ]; then
        say "not installing THINTRIM_DEB in the $release guest (it is the bookworm package; set $deb_var)"
    fi
fi
cache=${THINTRIM_VM_CACHE:-/var/cache/thintrim-vm}/$release

[ "$(id -u)" -eq 0 ] || { say "needs root"; exit 77; }
for tool in qemu-system-x86_64 qemu-img; do
    command -v "$tool" >/dev/null || { say "$tool missing: run packaging/dev.sh deps"; exit 77; }
done
script=$here/scenarios/$scenario.sh
[ -f "$script" ] || die "no scenario $script"
if [ -n "$deb" ]; then
    [ -f "$deb" ] || die "the .deb $deb ($deb_var or --deb): no such file"
    deb=$(readlink -f "$deb")
fi
if [ -n "$on_mark_script" ]; then
    [ -x "$on_mark_script" ] || die "--on-mark $on_mark_script: not an executable file"
    on_mark_script=$(readlink -f "$on_mark_script")
fi
# Extra disks the scenario asks for.
read -r -a wanted <<<"$(sed -n 's/^# vm-disks:[[:space:]]*\([^(]*\).*/\1/p' "$script" | head -n1)"
extra+=("${wanted[@]}")
# Files from elsewhere in the tree that the scenario sources: a line
# "# vm-share: tests/bench/FILE ..." (paths from the top of the source tree),
# copied next to guest/lib.sh.
read -r -a shared <<<"$(sed -n 's/^# vm-share:[[:space:]]*//p' "$script" | head -n1)"

# The image (a no-op when the cache is current).
"$here/build-image.sh" --release "$release" || { rc=$?; [ "$rc" = 77 ] && exit 77; die "image build failed"; }

out=${out:-${TMPDIR:-/tmp}/thintrim-vm-out/$scenario}
mkdir -p "$out"
out=$(readlink -f "$out")
# Start from an empty dir, but never wipe a dir this script did not create.
if [ -n "$(ls -A "$out")" ]; then
    [ -e "$out/.thintrim-vm-run" ] || die "$out is not empty and not a previous run-vm.sh output"
    rm -rf "${out:?}"/* "$out"/.thintrim-vm-run
fi
touch "$out/.thintrim-vm-run"
share=$out/share
disks=$out/disks
mkdir -p "$share/guest" "$share/scenarios" "$share/ack" "$share/out" "$share/deb" "$disks"

# The QMP and guest-agent sockets. A unix socket path is limited to 107 bytes
# (sun_path); a deep --out (meson's build dir in CI) would make qemu fail, so
# then they live in a short directory and $out has symlinks to them.
sockdir=$out
if [ $((${#out} + 10)) -gt 107 ]; then
    sockdir=$(mktemp -d /tmp/thintrim-vm.XXXXXX)
fi
qmp_sock=$sockdir/qmp.sock
qga_sock=$sockdir/qga.sock
if [ "$sockdir" != "$out" ]; then
    ln -s "$qmp_sock" "$out/qmp.sock"
    ln -s "$qga_sock" "$out/qga.sock"
fi

qemu_pid=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        say "stopping qemu (pid $qemu_pid)"
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    [ "$sockdir" = "$out" ] || rm -rf "$sockdir"
    if [ "$keep" != 1 ]; then
        rm -rf "$disks" "$share/deb"
    else
        say "kept the disk images in $disks"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP

# --- disks -------------------------------------------------------------------
# disks.tsv: id  file  bus  serial  drive-discard  device-options
printf 'id\tfile\tbus\tserial\tdrive_discard\tdevice_options\n' >"$out/disks.tsv"
qemu_disks=()
scsi_id=0
disk_bytes=$((4 << 30))
add_disk() { # id bus serial drive_discard device_opts
    local id=$1 bus=$2 serial=$3 ddisc=$4 dopts=$5 file=$disks/$1.qcow2
    qemu-img create -q -f qcow2 -o cluster_size=64k "$file" "$disk_bytes"
    qemu_disks+=(-drive "file=$file,if=none,id=$id,format=qcow2,discard=$ddisc,cache=writeback")
    case $bus in
    scsi)
        qemu_disks+=(-device "scsi-hd,bus=scsi0.0,channel=0,scsi-id=$scsi_id,lun=0,drive=$id,serial=$serial${dopts:+,$dopts}")
        scsi_id=$((scsi_id + 1)) ;;
    vblk)
        qemu_disks+=(-device "virtio-blk-pci,drive=$id,serial=$serial${dopts:+,$dopts}") ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$file" "$bus" "$serial" "$ddisc" "${dopts:--}" >>"$out/disks.tsv"
}
add_disk data0 scsi trimdata0 unmap ""
add_disk data1 scsi trimdata1 unmap ""
add_disk vblk0 vblk trimvblk0 unmap ""
n_scsi=2
for kind in "${extra[@]}"; do
    case $kind in
    nodisc-vblk) add_disk nodisc-vblk vblk nodisc-vblk unmap "discard=off" ;;
    nodisc-scsi) add_disk nodisc-scsi scsi nodisc-scsi unmap "discard_granularity=0" ;;
    ignore-scsi) add_disk ignore-scsi scsi ignore-scsi ignore "" ;;
    scsi) add_disk "data$n_scsi" scsi "trimdata$n_scsi" unmap ""; n_scsi=$((n_scsi + 1)) ;;
    *) die "unknown --disk kind '$kind'" ;;
    esac
done

qemu-img create -q -f qcow2 -b "$cache/root.img" -F raw "$disks/root.qcow2"

# --- share -------------------------------------------------------------------
cp "$here/guest/"*.sh "$here/capture-sysfs.sh" "$share/guest/"
cp "$here/scenarios/"*.sh "$share/scenarios/"
for file in "${shared[@]}"; do
    cp "$here/../../$file" "$share/guest/" || die "vm-share: no $file in the source tree"
done
deb_name=
if [ -n "$deb" ]; then
    deb_name=$(basename "$deb")
    cp "$deb" "$share/deb/$deb_name"
fi
cat >"$share/run.conf" <<EOF
SCENARIO=$scenario
RELEASE=$release
DEB=$deb_name
ACK_TIMEOUT=300
EOF

# --- qemu --------------------------------------------------------------------
kernel=$cache/vmlinux
[ -s "$kernel" ] || kernel=$cache/vmlinuz
append="root=/dev/vda rw console=ttyS0,115200 fsck.mode=skip panic=1 loglevel=4"
append+=" mitigations=off random.trust_cpu=on systemd.show_status=auto"
# Legacy devices of -machine pc that only cost probe time under TCG.
append+=" modprobe.blacklist=floppy,pcspkr,psmouse"
# shellcheck disable=SC2054 # commas inside qemu options
qemu=(qemu-system-x86_64 -name thintrim-vm
    -accel tcg,thread=multi -machine pc -cpu max -smp 2 -m 2048
    -nodefaults -no-user-config -display none -vga none -nic none -no-reboot
    -kernel "$kernel" -initrd "$cache/initrd.img" -append "$append"
    -serial "file:$out/console.log" -serial "file:$out/control.log"
    -virtfs "local,path=$share,mount_tag=thintrim,security_model=none,id=share"
    -drive "file=$disks/root.qcow2,if=none,id=root,format=qcow2,discard=unmap,cache=unsafe"
    -device virtio-blk-pci,drive=root
    -device virtio-scsi-pci,id=scsi0
    -qmp "unix:$qmp_sock,server=on,wait=off"
    -chardev "socket,path=$qga_sock,server=on,wait=off,id=qga0"
    -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0
    "${qemu_disks[@]}")
printf '%q ' "${qemu[@]}" >"$out/qemu.cmd"
echo >>"$out/qemu.cmd"
sed -e "s|$out|RUN|g" -e "s|$sockdir|RUN|g" -e "s|$cache|IMAGE|g" "$out/qemu.cmd" >"$share/qemu.cmd"
: >"$out/console.log"
: >"$out/control.log"
printf 'mark\tdisk\tallocated_bytes\tvirtual_bytes\tseconds\n' >"$out/results.tsv"

mapfile -t disk_ids < <(tail -n +2 "$out/disks.tsv" | cut -f1)
alloc() { local s; s=$(stat -c '%b %B' "$disks/$1.qcow2"); echo $(( ${s% *} * ${s#* } )); }
sample_all() { local id; for id in "${disk_ids[@]}"; do printf '%s ' "$(alloc "$id")"; done; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

start=$(date +%s.%N)
since() { awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

# A mark: sample every image until two samples 0.3 s apart agree (qemu has
# finished the requests that the guest's sync/fstrim waited for; this only
# guards against stragglers), record, then acknowledge on the share.
on_mark() {
    local name=$1 prev cur id line=""
    prev=$(sample_all)
    for _ in $(seq 30); do
        sleep 0.3
        cur=$(sample_all)
        [ "$cur" = "$prev" ] && break
        prev=$cur
    done
    for id in "${disk_ids[@]}"; do
        local a
        a=$(alloc "$id")
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$id" "$a" "$disk_bytes" "$(since)" >>"$out/results.tsv"
        line+=" $id=$(mib "$a")MiB"
    done
    say "mark $name at $(since)s:$line"
    [ -z "$on_mark_script" ] || run_on_mark "$name"
    touch "$share/ack/$name"
}

# --on-mark: the guest is held at the mark while the hook runs, so what it
# sees (over QMP or the guest agent) is the state the samples describe. A
# hook's failure is logged, never the run's: it is a side channel. The
# timeout stays well below the guest's ack timeout (300 s).
run_on_mark() {
    local name=$1 rc=0 t0
    t0=$(since)
    {
        echo "=== mark $name at ${t0}s: $on_mark_script $name"
        THINTRIM_VM_QMP=$qmp_sock THINTRIM_VM_QGA=$qga_sock THINTRIM_VM_OUT=$out \
            THINTRIM_VM_RELEASE=$release timeout --kill-after=5 120 "$on_mark_script" "$name" \
            </dev/null 2>&1 || rc=$?
        echo "=== mark $name: exit $rc after $(awk -v a="$t0" -v b="$(since)" 'BEGIN {printf "%.1f", b - a}')s"
    } >>"$out/on-mark.log"
    [ "$rc" = 0 ] || say "on-mark hook failed at mark $name (exit $rc; see $out/on-mark.log)"
}

say "booting $scenario on $release (timeout ${timeout_s}s, log $out/console.log)"
# Backstops for when this script is killed without running its trap (SIGKILL):
# setpriv's parent-death signal reaches timeout(1), which passes it on to qemu;
# and timeout(1) alone ends qemu shortly after the deadline.
setpriv --pdeathsig TERM timeout --kill-after=10 $((timeout_s + 30)) "${qemu[@]}" \
    >"$out/qemu.stderr" 2>&1 &
qemu_pid=$!
deadline=$(( $(date +%s) + timeout_s ))
handled=0 guest_rc="" booted=""
process_control() {
    local total line
    total=$(wc -l <"$out/control.log")
    while [ "$handled" -lt "$total" ]; do
        handled=$((handled + 1))
        line=$(sed -n "${handled}p" "$out/control.log" | tr -d '\r')
        case $line in
        *"@@THINTRIM MARK "*)
            name=${line##*@@THINTRIM MARK }
            name=${name%%[!A-Za-z0-9._-]*}
            on_mark "$name" ;;
        *"@@THINTRIM DONE rc="*)
            guest_rc=${line##*rc=}
            guest_rc=${guest_rc%%[!0-9]*} ;;
        *"@@THINTRIM BOOTED"*)
            booted=$(since)
            say "guest up, runner started at ${booted}s (${line##*BOOTED })" ;;
        esac
    done
}
timed_out=0
while kill -0 "$qemu_pid" 2>/dev/null; do
    process_control
    if [ "$(date +%s)" -ge "$deadline" ]; then
        timed_out=1
        break
    fi
    sleep 0.2
done
if [ "$timed_out" = 0 ]; then
    wait "$qemu_pid" && qemu_rc=0 || qemu_rc=$?
    qemu_pid=
    process_control
fi
total=$(since)
printf 'release\t%s\nboot_to_runner_s\t%s\nboot_to_poweroff_s\t%s\nguest_rc\t%s\n' \
    "$release" "${booted:--}" "$total" "${guest_rc:--}" >"$out/timing.txt"

if [ "$timed_out" = 1 ]; then
    say "TIMEOUT after ${timeout_s}s; last console lines:"
    tail -n 30 "$out/console.log" | tr -d '\r' >&2
    exit 124
fi
if [ -z "$guest_rc" ]; then
    say "the guest stopped without reporting (qemu exit $qemu_rc); last console lines:"
    tail -n 40 "$out/console.log" | tr -d '\r' >&2
    [ -s "$out/qemu.stderr" ] && cat "$out/qemu.stderr" >&2
    exit 3
fi
say "scenario $scenario on $release: guest rc $guest_rc, boot to poweroff ${total}s (results: $out/results.tsv)"
if [ "$guest_rc" != 0 ]; then
    say "last lines of the guest log:"
    tail -n 30 "$share/out/guest.log" 2>/dev/null >&2 || tail -n 30 "$out/console.log" | tr -d '\r' >&2
fi
exit "$guest_rc"
