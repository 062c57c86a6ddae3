#!/bin/bash
# capture-sysfs.sh -- runs INSIDE the VM guest. Writes the discard-relevant
# part of /sys and /proc, plus tool output, as a tar in the format of
# tests/fixtures/*.tar.gz:
#
#   sys/devices/.../<dev>/   one real device dir per /sys/class/block entry, only:
#       dev size ro removable partition start alignment_offset discard_alignment
#       queue/{discard_max_bytes,discard_max_hw_bytes,discard_granularity,
#              discard_zeroes_data,write_zeroes_max_bytes,max_discard_segments,
#              logical_block_size,physical_block_size,rotational}
#       dm/{name,uuid,suspended} md/{level,raid_disks,array_state,chunk_size}
#       loop/backing_file, slaves/* holders/* device (the kernel's relative links)
#       <scsi dev>/scsi_disk/<h:c:t:l>/provisioning_mode
#   sys/dev/block/MAJ:MIN  sys/block/NAME  sys/class/block/NAME   (relative links)
#   sys/fs/btrfs/<uuid>/devices/* and discard/*
#   proc/self/mountinfo proc/swaps proc/mdstat
#   meta/  commands.txt qemu.cmd uname.txt tools.txt lsblk*.{txt,json}
#          dmsetup-*.txt blkid.txt findmnt.{txt,json} disk-serials.txt
#          capture-warnings.txt (unreadable files, dangling or escaping links)
#
# Not produced (they are verdicts, written by whoever curates a fixture):
# meta/expected.txt and meta/expected.tsv.
#
# Usage: capture-sysfs.sh OUT.tar.gz
set -euo pipefail
out=${1:?usage: capture-sysfs.sh OUT.tar.gz}
case $out in /*) ;; *) out=$PWD/$out ;; esac
share=${THINTRIM_VM_SHARE:-/trimtest}
guest_out=${THINTRIM_VM_OUT:-$share/out}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t=$tmp/tree
mkdir -p "$t/meta" "$t/proc/self" "$t/sys/dev/block" "$t/sys/block" "$t/sys/class/block"
: >"$t/meta/capture-warnings.txt"
warn() { echo "$*" >>"$t/meta/capture-warnings.txt"; }

# Under TCG every fork costs tens of milliseconds, so this walks sysfs with
# shell builtins only: collect the files and links first, then one mkdir, one
# cp for the links, and builtin reads/writes for the files.
files=()
links=()
declare -A dirs=()
want_file() { [ -f "$1" ] && { files+=("$1"); dirs[${1%/*}]=1; }; return 0; }
want_link() { [ -L "$1" ] && links+=("$1"); return 0; }

queue_files="discard_max_bytes discard_max_hw_bytes discard_granularity discard_zeroes_data
    write_zeroes_max_bytes max_discard_segments logical_block_size physical_block_size rotational"

for cls in /sys/class/block/*; do
    name=${cls##*/}
    cd -P "$cls"
    dev=$PWD
    cd /
    dirs[$dev]=1
    for f in dev size ro removable partition start alignment_offset discard_alignment; do
        want_file "$dev/$f"
    done
    for f in $queue_files; do want_file "$dev/queue/$f"; done
    for f in name uuid suspended; do want_file "$dev/dm/$f"; done
    for f in level raid_disks array_state chunk_size; do want_file "$dev/md/$f"; done
    want_file "$dev/loop/backing_file"
    for sub in slaves holders; do
        [ -d "$dev/$sub" ] || continue
        dirs[$dev/$sub]=1
        for l in "$dev/$sub"/*; do want_link "$l"; done
    done
    if [ -L "$dev/device" ]; then
        want_link "$dev/device"
        for p in "$dev"/device/scsi_disk/*/provisioning_mode; do
            [ -f "$p" ] || continue
            cd -P "${p%/*}"
            want_file "$PWD/provisioning_mode"
            cd /
        done
    fi
    read -r majmin <"$dev/dev"
    want_link "$cls"
    want_link "/sys/dev/block/$majmin"
    want_link "/sys/block/$name"
done

for fs in /sys/fs/btrfs/*/; do
    fs=${fs%/}
    [ -d "$fs/devices" ] || continue
    for l in "$fs/devices"/*; do want_link "$l"; done
    for f in "$fs/discard"/*; do want_file "$f"; done
done

dirlist=()
for d in "${!dirs[@]}"; do dirlist+=("$t$d"); done
mkdir -p "${dirlist[@]}"
[ ${#links[@]} -eq 0 ] || cp -P --parents -t "$t" "${links[@]}"
for f in "${files[@]}"; do
    v=
    { read -r -d '' v; } 2>/dev/null <"$f" || true   # read returns 1 at EOF: normal
    [ -n "$v" ] || warn "empty or unreadable: $f"
    printf '%s' "$v" >"$t$f"
done

cat /proc/self/mountinfo >"$t/proc/self/mountinfo"
cat /proc/swaps >"$t/proc/swaps"
cat /proc/mdstat >"$t/proc/mdstat" 2>/dev/null || : >"$t/proc/mdstat"

# Every link must resolve inside the tree.
while IFS= read -r l; do
    warn "dangling link: ${l#"$t"/} -> $(readlink "$l")"
done < <(find "$t" -xtype l)
while IFS= read -r target; do
    case $target in
    "$t"/*) ;;
    *) warn "escaping link to $target" ;;
    esac
done < <(find "$t" -type l -printf '%h/%l\0' | xargs -0 -r realpath -m)

m=$t/meta
section() { printf '### %s\n' "$*"; eval "$*" 2>&1 || true; echo; }
uname -a >"$m/uname.txt"
[ -f "$guest_out/commands.txt" ] && cp "$guest_out/commands.txt" "$m/commands.txt"
[ -f "$share/qemu.cmd" ] && cp "$share/qemu.cmd" "$m/qemu.cmd"
lsblk -J -O -b >"$m/lsblk-JOb.json" 2>&1 || true
lsblk -D >"$m/lsblk-D.txt" 2>&1 || true
lsblk -o NAME,MAJ:MIN,TYPE,SIZE,DISC-ALN,DISC-GRAN,DISC-MAX,DISC-ZERO,MOUNTPOINTS >"$m/lsblk.txt" 2>&1 || true
dmsetup table >"$m/dmsetup-table.txt" 2>&1 || true
dmsetup ls --tree >"$m/dmsetup-ls-tree.txt" 2>&1 || true
blkid -c /dev/null >"$m/blkid.txt" 2>&1 || true
findmnt -J >"$m/findmnt.json" 2>&1 || true
findmnt >"$m/findmnt.txt" 2>&1 || true
{
    section uname -a
    section cat /proc/cmdline
    section losetup -l
    section swapon --show --bytes
    section cat /proc/mdstat
    for md in /dev/md[0-9]*; do [ -b "$md" ] && section mdadm --detail "$md"; done
    if command -v pvs >/dev/null; then
        section pvs -o pv_name,vg_name,pv_size,pv_free
        section vgs
        section lvs -a -o lv_name,vg_name,lv_size,segtype,discards,devices
        section lvmconfig --type full devices/issue_discards
    fi
    for d in $(dmsetup ls --target crypt 2>/dev/null | awk '$1 != "No" {print $1}'); do
        section cryptsetup status "$d"
    done
    command -v btrfs >/dev/null && section btrfs filesystem show
    section cat /sys/module/raid456/parameters/devices_handle_discard_safely
} >"$m/tools.txt"
declare -A serial=()
while read -r n sr; do serial[$n]=$sr; done < <(lsblk -dn -o NAME,SERIAL 2>/dev/null)
for cls in /sys/class/block/*; do
    name=${cls##*/}
    [ -e "$cls/partition" ] && continue
    pm=-
    for p in "$cls"/device/scsi_disk/*/provisioning_mode; do
        [ -f "$p" ] && read -r pm <"$p"
    done
    echo "$name serial=${serial[$name]:-} provisioning_mode=$pm"
done >"$m/disk-serials.txt"

mkdir -p "$(dirname "$out")"
tar -C "$t" --sort=name --owner=0 --group=0 --numeric-owner -czf "$out.tmp" meta proc sys
mv "$out.tmp" "$out"
echo "capture-sysfs: $out ($(du -k "$out" | cut -f1) KiB, $(find "$t" -type l | wc -l) links," \
    "$(wc -l <"$m/capture-warnings.txt") warnings)"
