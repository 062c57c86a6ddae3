#!/bin/bash
# build-deb.sh [--release NAME] OUTDIR -- build thintrim's Debian package from
# this work tree.
#
# dpkg-buildpackage wants debian/ at the root of the source tree; ours lives
# in packaging/debian so that the tree stays distribution-neutral. So: copy
# the tree (what git would commit: packaging/copy-tree.sh) to a temporary
# directory, put packaging/debian at its root, build the binary packages
# unsigned (dh_auto_test runs the unit and cli suites), run lintian on the
# result (an error or a warning fails the build), and move the .deb files, the .buildinfo
# and the .changes to OUTDIR.
#
# Without --release, or with the release of this machine, it builds here
# with the build dependencies installed (packaging/deps.txt lists them).
# With --release NAME (bookworm, trixie, sid...) it builds in a clean chroot
# of that release: made once by mmdebstrap with the Build-Depends of
# packaging/debian/control (so they must resolve there) and lintian, cached
# in $THINTRIM_CHROOT_CACHE/NAME (default /var/cache/thintrim-chroot) and
# made again when control or this script change. Needs root and mmdebstrap.
#
# Environment: KEEP_WORKDIR=1 keeps the temporary tree for inspection;
# DEB_BUILD_OPTIONS as usual (default: parallel=<number of CPUs>);
# THINTRIM_CHROOT_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

release=
if [ "${1:-}" = --release ]; then
    release=${2:?--release needs a name}
    shift 2
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--release NAME] OUTDIR" >&2
    exit 2
fi
top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
# shellcheck source=/dev/null
here_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -n "$release" ] && [ "$release" != "$here_release" ]; then
    exec "$top/packaging/build-deb-chroot.sh" "$release" "$out"
fi

for tool in dpkg-buildpackage dpkg-parsechangelog lintian; do
    if ! command -v "$tool" >/dev/null; then
        echo "build-deb.sh: $tool is missing (packages dpkg-dev, debhelper, lintian)" >&2
        exit 1
    fi
done

version=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
work=$(mktemp -d)
if [ "${KEEP_WORKDIR:-0}" = 1 ]; then
    echo "build-deb.sh: work tree kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi
src=$work/thintrim-$version
mkdir "$src"

echo "==> copying the tree to $src"
"$top/packaging/copy-tree.sh" "$src"
rm -rf "$src/debian"
cp -a "$top/packaging/debian" "$src/debian"

echo "==> dpkg-buildpackage -b -us -uc"
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=$(nproc)}
(cd "$src" && dpkg-buildpackage -b -us -uc)

changes=$(ls "$work"/thintrim_"${version}"_*.changes)
echo "==> lintian $(basename "$changes")"
# Errors and warnings fail the build; the rest is shown.
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes"

shopt -s nullglob
artifacts=("$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes)
mv "${artifacts[@]}" "$out/"
echo "==> in $out:"
for file in "${artifacts[@]}"; do
    echo "    $(basename "$file")"
done
