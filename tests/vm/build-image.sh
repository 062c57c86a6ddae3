#!/bin/bash
# build-image.sh -- build (once) a guest image of the VM test suite: Debian 12
# (bookworm) or Debian 13 (trixie).
#
#   tests/vm/build-image.sh [--release R]          build if the cache is stale
#   tests/vm/build-image.sh [--release R] --force  rebuild even if it is current
#   tests/vm/build-image.sh [--release R] --print  print the cache dir and whether it is current
#
# --release bookworm|trixie [THINTRIM_VM_RELEASE, default bookworm]. Each
# release has its own cache and stamp; what differs between them is the case
# under "Per release" below.
#
# Output, in $THINTRIM_VM_CACHE/<release>/ (default /var/cache/thintrim-vm/,
# never inside the repo):
#   root.img      raw ext4 root filesystem (sparse), booted as /dev/vda
#   vmlinuz       the guest kernel  } booted with -kernel/-initrd/-append,
#   vmlinux       the same, unpacked} no bootloader (vmlinux: PVH entry,
#   initrd.img    its initramfs     } no decompression under TCG)
#   manifest.txt  dpkg -l of the guest, kernel version, build time
#   stamp         hash of the inputs; the image is rebuilt only when it changes
#   build.log     mmdebstrap's output of the last build
#
# Inputs hashed into the stamp: this script (the package list lives here),
# tests/vm/image/* (files baked into the image) and the mirror.
#
# Environment:
#   THINTRIM_VM_RELEASE  bookworm (default) or trixie
#   THINTRIM_VM_CACHE    cache root (default /var/cache/thintrim-vm; the image in <release>/)
#   THINTRIM_VM_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   THINTRIM_VM_SECURITY_MIRROR  (default http://deb.debian.org/debian-security)
#   THINTRIM_VM_BUILD_TIMEOUT    seconds for the whole build (default 1200)
#
# Exit: 0 image current, 1 build failed, 77 not root or tools missing.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
release=${THINTRIM_VM_RELEASE:-bookworm}
mirror=${THINTRIM_VM_MIRROR:-http://deb.debian.org/debian}
security_mirror=${THINTRIM_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
build_timeout=${THINTRIM_VM_BUILD_TIMEOUT:-1200}

force=0 print=0
while [ $# -gt 0 ]; do
    case $1 in
    --force) force=1; shift ;;
    --print) print=1; shift ;;
    --release) release=${2:-}; shift 2 || { echo "build-image: --release needs a value" >&2; exit 2; } ;;
    *) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

# Per release: everything that differs between the two images. The runtime
# libraries are the ones the thintrim .deb built on that release depends on
# (sonames change between releases: fmt 9 -> 10, sdbus-c++ 1 -> 2).
case $release in
bookworm) release_libs=(libfmt9 libsdbus-c++1) ;;
trixie) release_libs=(libfmt10 libsdbus-c++2) ;;
*) echo "build-image: unknown release '$release' (bookworm or trixie)" >&2; exit 2 ;;
esac
suite=$release
security_suite=$release-security
cache=${THINTRIM_VM_CACHE:-/var/cache/thintrim-vm}/$release

# The guest's packages. Runtime libraries of the thintrim .deb are here too:
# the guest has no network, so `dpkg -i` of the package must find every
# dependency already installed. Add a library here when the package gains one.
packages=(
    # init, bus, devices
    systemd systemd-sysv dbus udev kmod
    # the kernel and a small initramfs for -kernel/-initrd
    linux-image-amd64 initramfs-tools zstd
    # block stacks and filesystems
    mdadm cryptsetup lvm2 dmsetup thin-provisioning-tools
    xfsprogs btrfs-progs e2fsprogs util-linux fdisk
    # scenario helpers; f2fs, autofs and polkitd for the hardening cases,
    # fio for the foreground-latency benchmark
    procps psmisc f2fs-tools autofs polkitd fio
    # for host-side tools that talk to the guest over the virtio-serial
    # channel run-vm.sh always adds (no network needed)
    qemu-guest-agent
    # thintrim's runtime libraries (what thintrim and thintrimd link; libstdc++/libgcc come along)
    libmount1 libblkid1 libsystemd0 libstdc++6 "${release_libs[@]}"
)

say() { printf 'build-image: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

inputs_hash() {
    {
        sha256sum <"$here/build-image.sh" # contents only: any checkout shares the cache
        (cd "$here/image" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
        echo "mirror=$mirror security=$security_mirror suite=$suite release=$release"
    } | sha256sum | cut -d' ' -f1
}

want=$(inputs_hash)
is_current() {
    [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$want" ] &&
        [ -s "$cache/root.img" ] && [ -s "$cache/vmlinuz" ] && [ -s "$cache/initrd.img" ]
}

if [ "$print" = 1 ]; then
    if is_current; then echo "$cache current ($want)"; else echo "$cache stale (want $want)"; fi
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "needs root (mmdebstrap --mode=root, mkfs of the image)"
    exit 77
fi
for tool in mmdebstrap mkfs.ext4 timeout flock; do
    command -v "$tool" >/dev/null || { say "$tool missing: run packaging/dev.sh deps"; exit 77; }
done

mkdir -p "$cache"
# One builder at a time; a second caller waits and then finds the cache current.
exec 9>"$cache/.lock"
flock -w "$build_timeout" 9 || die "timed out waiting for $cache/.lock"

if [ "$force" = 0 ] && is_current; then
    say "image current in $cache"
    exit 0
fi

# Leftovers of a builder that was killed (we hold the lock, so none is running).
for stale in "$cache"/build.*; do
    [ -e "$stale" ] || continue
    for m in $(awk -v w="$stale" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$stale"
done

start=$(date +%s)
work=$(mktemp -d "$cache/build.XXXXXX")
new=$work.new
mkdir "$new"
cleanup() {
    # mmdebstrap unmounts what it mounted; be defensive if it was killed.
    local m
    for m in $(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$work" "$new"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The tree is built in RAM: unpacking and later deleting ~25000 files is what
# takes the time on a slow CI disk. Falls back to the disk if tmpfs fails.
if ! mount -t tmpfs -o size=4G,mode=0755 thintrim-vm-build "$work" 2>/dev/null; then
    say "no tmpfs for the build tree; building on disk in $work"
fi
rootfs=$work/rootfs

say "building the $suite guest image in $cache (mirror $mirror); log: $cache/build.log"

# Written before the kernel is installed: a small initrd (only the listed
# modules). The customize hook builds the one we boot.
essential_hook='
set -e
mkdir -p "$1/etc/initramfs-tools/conf.d"
printf "MODULES=list\nCOMPRESS=zstd\nRESUME=none\n" >"$1/etc/initramfs-tools/conf.d/thintrim-vm.conf"
printf "virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n" >>"$1/etc/initramfs-tools/modules"
'

customize_hook='
set -e
r=$1
echo thintrim-vm >"$r/etc/hostname"
printf "127.0.0.1\tlocalhost\n127.0.1.1\tthintrim-vm\n" >"$r/etc/hosts"
printf "/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n" >"$r/etc/fstab"
install -m 0755 "$THINTRIM_VM_IMAGE_DIR/thintrim-vm-boot" "$r/usr/local/sbin/thintrim-vm-boot"
install -m 0644 "$THINTRIM_VM_IMAGE_DIR/thintrim-test.service" "$r/etc/systemd/system/thintrim-test.service"
chroot "$r" systemctl enable thintrim-test.service
chroot "$r" systemctl set-default multi-user.target
# Nothing should wait for a login or run maintenance in a test boot. fstrim.timer,
# xfs_scrub_all.timer (xfs_scrub ends with a FITRIM; enabled on trixie) and the
# mdadm checks would also change the disks behind the scenario'"'"'s back.
for u in getty.target serial-getty@ttyS0.service serial-getty@ttyS1.service getty@tty1.service \
         apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
         e2scrub_reap.service fstrim.timer fstrim.service mdcheck_start.timer mdcheck_continue.timer \
         mdmonitor-oneshot.timer mdmonitor.service systemd-timesyncd.service \
         xfs_scrub_all.timer xfs_scrub_all.service \
         systemd-networkd-wait-online.service; do
    chroot "$r" systemctl mask "$u" >/dev/null 2>&1 || true
done
# The initrd we boot only has to mount /dev/vda: without the hooks of mdadm,
# lvm2, btrfs, ... it is smaller, and no raid6 benchmark or array scan runs
# before the root is mounted. The hooks go back afterwards, so the image
# itself stays stock.
kver=$(ls "$r/lib/modules" | sort -V | tail -n1)
aside=$r/var/tmp/thintrim-initramfs-aside
mkdir -p "$aside"
hidden=""
for f in hooks/mdadm hooks/lvm2 hooks/dmsetup hooks/btrfs hooks/thin-provisioning-tools hooks/xfs \
         hooks/resume scripts/local-block/mdadm scripts/local-bottom/mdadm scripts/local-premount/btrfs; do
    [ -e "$r/usr/share/initramfs-tools/$f" ] || continue
    mkdir -p "$aside/${f%/*}"
    mv "$r/usr/share/initramfs-tools/$f" "$aside/$f"
    hidden="$hidden $f"
done
chroot "$r" mkinitramfs -o "/boot/initrd.img-$kver" "$kver"
for f in $hidden; do
    mv "$aside/$f" "$r/usr/share/initramfs-tools/$f"
done
rm -rf "$aside"
# binfmt_misc is not needed and costs an automount at boot.
chroot "$r" systemctl mask proc-sys-fs-binfmt_misc.automount systemd-binfmt.service >/dev/null
# The root is throwaway: keep the journal in memory.
mkdir -p "$r/etc/systemd/journald.conf.d"
printf "[Journal]\nStorage=volatile\n" >"$r/etc/systemd/journald.conf.d/thintrim-vm.conf"
passwd -R "$r" -l root >/dev/null 2>&1 || chroot "$r" passwd -l root >/dev/null
# What systemd-update-done writes: without these stamps, every boot of the
# throwaway overlay counts as the first after an update of /usr and trixie
# runs ldconfig and the journal catalog update first (ConditionNeedsUpdate=,
# about 4 s under TCG).
for d in etc var; do
    printf "TIMESTAMP_NSEC=%s\n" "$(date -r "$r/usr" +%s%N)" >"$r/$d/.updated"
    touch -r "$r/usr" "$r/$d/.updated"
done
'

export THINTRIM_VM_IMAGE_DIR=$here/image
mmdebstrap_args=(
    --mode=root
    --variant=minbase
    --format=directory
    --include="$(IFS=,; echo "${packages[*]}")"
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --aptopt='Acquire::Retries "3"'
    --essential-hook="$essential_hook"
    --customize-hook="$customize_hook"
    "$suite" "$rootfs"
    "deb $mirror $suite main"
    "deb $mirror $suite-updates main"
    "deb $security_mirror $security_suite main"
)
if ! DEBIAN_FRONTEND=noninteractive timeout --kill-after=30 "$build_timeout" \
        mmdebstrap "${mmdebstrap_args[@]}" >"$work/build.log" 2>&1; then
    cp "$work/build.log" "$cache/build.log" || true
    tail -n 40 "$work/build.log" >&2 || true
    die "mmdebstrap failed (full log: $cache/build.log)"
fi
cp "$work/build.log" "$cache/build.log"

# A fixed machine id (mmdebstrap empties it at the end): otherwise every boot
# of a throwaway overlay initializes one and counts as a first boot.
echo 5f1e0c2a9a2b4d6f8e7c6b5a49382716 >"$rootfs/etc/machine-id"

kver=$(cd "$rootfs/boot" && ls vmlinuz-* 2>/dev/null | sed 's/^vmlinuz-//' | sort -V | tail -n1)
[ -n "$kver" ] || die "no kernel in $rootfs/boot"
[ -s "$rootfs/boot/initrd.img-$kver" ] || die "no initrd for $kver"
cp "$rootfs/boot/vmlinuz-$kver" "$new/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$new/initrd.img"
# The uncompressed kernel: qemu boots its PVH entry directly, which skips the
# bzImage's self-decompression (about 8 s under TCG). run-vm.sh falls back to
# vmlinuz when vmlinux is missing.
python3 - "$new/vmlinuz" "$new/vmlinux" <<'PY' || say "no vmlinux extracted; booting the bzImage"
# Debian's kernels are xz-compressed bzImages; zstd is handled too (with the
# zstd tool: the module is not in python3's standard library) in case a
# release switches.
import lzma, shutil, subprocess, sys
data = open(sys.argv[1], "rb").read()
elf = None
start = data.find(b"\xfd7zXZ\x00")
if start >= 0:
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[start:])
else:
    start = data.find(b"\x28\xb5\x2f\xfd")
    if start >= 0 and shutil.which("zstd"):
        # zstd complains about the bzImage's trailing bytes; the frame is whole.
        elf = subprocess.run(["zstd", "-dcq"], input=data[start:], capture_output=True).stdout
if not elf:
    sys.exit("neither an xz nor a zstd payload found in the bzImage")
if elf[:4] != b"\x7fELF":
    sys.exit("the payload is not an ELF")
open(sys.argv[2], "wb").write(elf)
PY
if [ -s "$new/vmlinux" ] && ! readelf -n "$new/vmlinux" 2>/dev/null | grep -q 'type: (0x00000012)'; then
    say "vmlinux has no PVH entry note; booting the bzImage"
    rm -f "$new/vmlinux"
fi
{
    echo "built $(date -u +%FT%TZ) from $suite ($mirror)"
    echo "kernel $kver"
    echo "inputs $want"
    chroot "$rootfs" dpkg-query -W -f='${Package} ${Version}\n'
} >"$new/manifest.txt"

# A sparse raw ext4 made straight from the tree (no loop device, no mount).
used_mib=$(du -sm "$rootfs" | cut -f1)
size_mib=$(( (used_mib * 3 / 2 + 1024 + 255) / 256 * 256 ))
say "rootfs ${used_mib} MiB, image ${size_mib} MiB, kernel $kver"
truncate -s "${size_mib}M" "$new/root.img"
mkfs.ext4 -q -F -L thintrim-vm -E lazy_itable_init=0,lazy_journal_init=0 \
    -d "$rootfs" "$new/root.img" "${size_mib}M"

# Publish: files first, stamp last, so an interrupted build is never "current".
rm -f "$cache/stamp"
rm -f "$cache/vmlinux"
for f in root.img vmlinuz vmlinux initrd.img manifest.txt; do
    [ -e "$new/$f" ] && mv -f "$new/$f" "$cache/$f"
done
echo "$want" >"$cache/stamp"
say "done in $(( $(date +%s) - start ))s: $cache/{root.img,vmlinuz,initrd.img}"
