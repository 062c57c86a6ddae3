#!/bin/bash
# demo.sh - thintrim's main job in under a minute, on a throwaway loop device.
#
#   packaging/demo.sh [PATH-TO-thintrim]     (as root; default: $THINTRIM,
#                                             build/src/cli/thintrim, or PATH)
#
# A sparse 4 GiB image file stands in for a VM's thin qcow2 disk and a loop
# device for the virtual disk the guest sees.  We put ext4 on it, write 1 GiB,
# delete it, and watch how much of the image the host really has to store.
# Everything is removed afterwards, also on Ctrl-C.
set -euo pipefail

top=$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." && pwd)
LOOPFS_NAME=demo
# shellcheck source=tests/lib/loopfs.sh
. "$top/tests/lib/loopfs.sh"

THINTRIM=${1:-${THINTRIM:-}}
if [[ -z $THINTRIM ]]; then
	for cand in "$top/build/src/cli/thintrim" "$(command -v thintrim || true)"; do
		[[ -n $cand && -x $cand ]] && THINTRIM=$cand && break
	done
fi
[[ -n $THINTRIM && -x $THINTRIM ]] || loopfs_die "thintrim not found; usage: $0 PATH-TO-thintrim"
THINTRIM=$(realpath -- "$THINTRIM")

[[ $EUID -eq 0 ]] || loopfs_die "the demo creates a loop device and mounts it: run it as root"
[[ -c /dev/loop-control ]] || loopfs_die "no /dev/loop-control: this kernel has no loop device support"
command -v mkfs.ext4 >/dev/null || loopfs_die "mkfs.ext4 not found (apt-get install e2fsprogs)"

IMAGE_SIZE=4G
DATA_MIB=${DEMO_MIB:-1024}

loopfs_setup thintrim-demo
loopfs_image disk 4G >/dev/null
IMG=$LOOPFS_IMG

bold=
norm=
if [[ -t 1 ]]; then
	bold=$(tput bold 2>/dev/null || true)
	norm=$(tput sgr0 2>/dev/null || true)
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$norm"; }

declare -a ROWS
row() { ROWS+=("$(printf '  %-34s %12s   %s' "$1" "$(loopfs_human "$(loopfs_alloc_bytes "$IMG")")" "${2:-}")"); }
table() {
	printf '  %-34s %12s\n' "step" "image uses"
	printf '  %-34s %12s\n' "----" "----------"
	printf '%s\n' "${ROWS[@]}"
}

start=$(date +%s.%N)
step "A thin $IMAGE_SIZE virtual disk: sparse image $IMG"
printf '   apparent size %s, the host stores %s of it\n' \
	"$(loopfs_human "$(stat -c %s "$IMG")")" "$(loopfs_human "$(loopfs_alloc_bytes "$IMG")")"

loopfs_attach "$IMG" >/dev/null
DEV=$LOOPFS_DEV
loopfs_mkfs ext4 "$DEV" demo
loopfs_mount "$DEV" disk "$(loopfs_default_opts ext4)" ext4 >/dev/null
MNT=$LOOPFS_MNT
step "Attached as $DEV (the guest's disk), ext4 mounted on $MNT"
row "after mkfs.ext4"

step "The guest writes $DATA_MIB MiB ..."
loopfs_write_mib "$MNT/big-file" "$DATA_MIB"
row "after writing $DATA_MIB MiB"

step "... and deletes it again"
loopfs_delete "$MNT/big-file"
row "after deleting it" "<- free for the guest, still stored on the host"
df -h --output=source,size,used,avail,target "$MNT" | sed 's/^/   /'

step "thintrim stack $MNT: will discards reach the image?"
"$THINTRIM" stack "$MNT" | sed 's/^/   /' || loopfs_die "thintrim stack $MNT failed"

step "thintrim trim --local $MNT"
"$THINTRIM" trim --local "$MNT" | sed 's/^/   /' || loopfs_die "thintrim trim --local $MNT failed"
sync
row "after thintrim trim" "<- back to (almost) nothing"

end=$(date +%s.%N)
step "What the host's image file used at each step"
table
cat <<EOF

  The guest's filesystem told the virtual disk which blocks are free, the
  disk punched holes into the image: the host's thin image got its space back.
  (demo took $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s; cleaning up)
EOF
