#!/bin/bash
# build-deb-chroot.sh RELEASE OUTDIR -- build-deb.sh --release RELEASE: the
# Debian package built in a clean chroot of another Debian release.
#
# The chroot (mmdebstrap --variant=buildd, then `apt-get build-dep` of
# packaging/debian/control and lintian) is cached in
# $THINTRIM_CHROOT_CACHE/RELEASE with a stamp of its inputs (control, the
# recipe below, the mirror); it is made again when one changes. Each build copies
# the work tree in, runs dpkg-buildpackage -b (dh_auto_test: the unit and
# cli suites, against that release's libraries) and lintian (an error or a
# warning fails)
# inside, with /proc and /dev bound, and copies the results to OUTDIR.
# Builds of one release are serialized with flock.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 RELEASE OUTDIR" >&2
    exit 2
fi
release=$1
out=$(cd "$2" && pwd)
top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cache=${THINTRIM_CHROOT_CACHE:-/var/cache/thintrim-chroot}
mirror=${THINTRIM_CHROOT_MIRROR:-http://deb.debian.org/debian}
root=$cache/$release

say() { printf '==> %s\n' "$*"; }
die() {
    echo "build-deb-chroot.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap, chroot, mount)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (package mmdebstrap)"

mkdir -p "$cache"
exec 9>"$cache/$release.lock"
flock 9

# Bump when the way the chroot is made changes.
recipe="buildd+lintian+build-dep v1"
stamp=$( (cat "$top/packaging/debian/control"; echo "$recipe $mirror $release") | sha256sum | cut -c1-16)
if [ ! -f "$root/.thintrim-stamp" ] || [ "$(cat "$root/.thintrim-stamp")" != "$stamp" ]; then
    say "making the $release build chroot in $root (cached)"
    rm -rf "$root"
    # The build dependencies come from control itself (apt-get build-dep
    # with a directory), so a Build-Depends that does not resolve on this
    # release fails here, as it would on a buildd.
    mkdir -p "$cache/$release.control/debian"
    cp "$top/packaging/debian/control" "$cache/$release.control/debian/control"
    printf 'thintrim (0.0.0) UNRELEASED; urgency=medium\n\n  * chroot\n\n -- x <x@x>  Mon, 23 Nov 2026 12:00:00 +0000\n' \
        >"$cache/$release.control/debian/changelog"
    mmdebstrap --variant=buildd --include=lintian,ca-certificates \
        --customize-hook="mkdir -p \$1/control && cp -a $cache/$release.control/. \$1/control/" \
        --customize-hook='chroot "$1" apt-get update -qq' \
        --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq /control' \
        --customize-hook='rm -rf "$1/control"' \
        "$release" "$root" "$mirror"
    rm -rf "$cache/$release.control"
    echo "$stamp" >"$root/.thintrim-stamp"
fi

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version 2>/dev/null ||
    sed -n '1s/.*(\(.*\)).*/\1/p' "$top/packaging/debian/changelog")
work=/build
rm -rf "${root:?}$work"
src=$work/thintrim-$version
mkdir -p "$root$src"
"$top/packaging/copy-tree.sh" "$root$src"
rm -rf "$root$src/debian"
cp -a "$top/packaging/debian" "$root$src/debian"

mounted=()
cleanup() {
    local m
    for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
for fs in proc dev; do
    mount --bind "/$fs" "$root/$fs"
    mounted+=("$root/$fs")
done

jobs=$(nproc)
say "dpkg-buildpackage -b -us -uc in the $release chroot"
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$jobs}" \
    sh -c "cd $src && dpkg-buildpackage -b -us -uc"
changes=$(cd "$root$work" && ls thintrim_"${version}"_*.changes)
say "lintian $changes ($release)"
chroot "$root" sh -c "cd $work && lintian --fail-on error,warning --display-info --tag-display-limit 0 $changes"

shopt -s nullglob
artifacts=("$root$work"/*.deb "$root$work"/*.buildinfo "$root$work"/*.changes)
cp "${artifacts[@]}" "$out/"
say "in $out ($release):"
for file in "${artifacts[@]}"; do
    echo "    $(basename "$file")"
done
rm -rf "${root:?}$work"
