#!/bin/bash
# test-deb.sh -- build the Debian package (packaging/build-deb.sh: the package
# build runs the unit and cli suites, lintian must report no error) and check
# what it holds:
#   - the programs, the unit, the D-Bus and polkit files, the man pages, the
#     configuration (as a conffile) and the bash completion, each where
#     Debian 12's tools look for it;
#   - nothing anywhere else (no /usr/local, no build paths, no sources);
#   - the maintainer scripts enable and start thintrimd.service
#     (dh_installsystemd).
# The daemon's files are required once the top-level meson.build builds it.
# Exit 77 (skip) when dpkg-buildpackage or lintian are not installed.
# Environment: KEEP_DEBS=DIR keeps the built packages there; USE_DEBS=DIR
# checks the packages already in DIR instead of building (lintian runs again
# on them); THINTRIM_DEB=FILE (set by packaging/dev.sh test, which built it)
# means USE_DEBS=its directory.
set -uo pipefail

top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
for tool in dpkg-buildpackage lintian dh; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (packages dpkg-dev, lintian, debhelper)"
        exit 77
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${USE_DEBS:-}" ] && [ -n "${THINTRIM_DEB:-}" ]; then
    USE_DEBS=$(dirname "$THINTRIM_DEB")
fi
if [ -n "${USE_DEBS:-}" ]; then
    out=$USE_DEBS
    changes=$(ls "$out"/thintrim_*.changes 2>/dev/null | head -1)
    if [ -n "$changes" ]; then
        echo "==> lintian $(basename "$changes") (built by packaging/build-deb.sh)"
        lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes" ||
            { echo "FAIL: lintian reports errors or warnings" >&2; exit 1; }
    fi
else
    out=${KEEP_DEBS:-$work/out}
    if ! "$top/packaging/build-deb.sh" "$out" >"$work/build.log" 2>&1; then
        tail -60 "$work/build.log"
        echo "FAIL: packaging/build-deb.sh failed (log above)" >&2
        exit 1
    fi
    grep -A100 '^==> lintian' "$work/build.log"
fi

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

deb=$(ls "$out"/thintrim_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
    echo "FAIL: no thintrim_*.deb in $out" >&2
    exit 1
fi
echo "checking $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed -e 's|^\./|/|' -e 's|/$||' >"$work/contents"
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"

has() { # has PATH-REGEX WHAT
    grep -qE "^$1\$" "$work/contents" || fail "the package lacks $2 ($1)"
}
has /usr/bin/thintrim 'the CLI'
has /etc/thintrim/thintrim.conf 'the configuration'
has /etc/thintrim/thintrim.conf.d 'the drop-in directory'
has /usr/share/man/man1/thintrim.1.gz 'thintrim(1)'
has /usr/share/man/man5/thintrim.conf.5.gz 'thintrim.conf(5)'
has /usr/share/man/man8/thintrimd.8.gz 'thintrimd(8)'
has /usr/share/bash-completion/completions/thintrim 'the bash completion'
has /usr/share/doc/thintrim/copyright 'the copyright file'
grep -qx /etc/thintrim/thintrim.conf "$work/control/conffiles" 2>/dev/null ||
    fail "/etc/thintrim/thintrim.conf is not a conffile"

if grep -q "^subdir('src/daemon')" "$top/meson.build"; then
    has /usr/sbin/thintrimd 'the daemon'
    has '(/usr)?/lib/systemd/system/thintrimd.service' 'the systemd unit'
    has /usr/share/dbus-1/system.d/org.thintrim.ThinTrim1.conf 'the bus policy'
    has /usr/share/dbus-1/system-services/org.thintrim.ThinTrim1.service 'the D-Bus activation file'
    has /usr/share/polkit-1/actions/org.thintrim.ThinTrim1.policy 'the polkit action'
    grep -q 'deb-systemd-helper.*enable.*thintrimd.service\|thintrimd.service' \
        "$work/control/postinst" 2>/dev/null ||
        fail "postinst does not enable thintrimd.service (dh_installsystemd)"
    grep -q '_dh_action=start' "$work/control/postinst" 2>/dev/null &&
        grep -q "deb-systemd-invoke.*thintrimd.service" "$work/control/postinst" ||
        fail "postinst does not start thintrimd.service"
    grep -q 'deb-systemd-invoke.*stop' "$work/control/prerm" 2>/dev/null ||
        fail "prerm does not stop thintrimd.service"
    # The unit starts the daemon where the package puts it.
    mkdir "$work/root"
    dpkg-deb -x "$deb" "$work/root"
    unit=$(ls "$work"/root/{usr/,}lib/systemd/system/thintrimd.service 2>/dev/null | head -1)
    if [ -n "$unit" ]; then
        grep -qx 'ExecStart=/usr/sbin/thintrimd' "$unit" ||
            fail "the unit's ExecStart= is not /usr/sbin/thintrimd: $(grep ExecStart= "$unit")"
    fi
else
    echo "note: meson.build does not build src/daemon yet: daemon files not required"
fi

# Nothing outside the places above.
allowed='^/(etc(/thintrim(/.*)?)?|usr|usr/bin(/thintrim)?|usr/sbin(/thintrimd)?|(usr/)?lib|(usr/)?lib/systemd(/system(/thintrimd\.service)?)?|usr/share|usr/share/(man|man/man[158])(/thintrim[a-z0-9.]*\.gz)?|usr/share/doc(/thintrim(/.*)?)?|usr/share/dbus-1(/(system\.d|system-services|interfaces)(/org\.thintrim\.ThinTrim1\.[a-z]+)?)?|usr/share/polkit-1(/actions(/org\.thintrim\.ThinTrim1\.policy)?)?|usr/share/bash-completion(/completions(/thintrim)?)?)?$'
while read -r path; do
    [ -z "$path" ] && continue # the archive's root, ./
    [[ $path =~ $allowed ]] || fail "unexpected file in the package: $path"
done <"$work/contents"

# thintrim-host: its own package, holding only the host tool.
host_deb=$(ls "$out"/thintrim-host_*.deb 2>/dev/null | head -1)
if [ -z "$host_deb" ]; then
    fail "no thintrim-host_*.deb in $out"
else
    echo "checking $(basename "$host_deb")"
    dpkg-deb -c "$host_deb" | awk '{ print $6 }' | sed -e 's|^\./|/|' -e 's|/$||' >"$work/host-contents"
    for wanted in /usr/bin/thintrim-host /usr/share/man/man1/thintrim-host.1.gz \
        /usr/share/bash-completion/completions/thintrim-host /usr/share/doc/thintrim-host/copyright \
        /usr/share/thintrim-host/vzdump-hook; do
        grep -qx "$wanted" "$work/host-contents" || fail "thintrim-host lacks $wanted"
    done
    host_allowed='^/(usr|usr/bin(/thintrim-host)?|usr/share|usr/share/man(/man1(/thintrim-host\.1\.gz)?)?|usr/share/doc(/thintrim-host(/.*)?)?|usr/share/bash-completion(/completions(/thintrim-host)?)?|usr/share/thintrim-host(/vzdump-hook)?)?$'
    while read -r path; do
        [ -z "$path" ] && continue
        [[ $path =~ $host_allowed ]] || fail "unexpected file in thintrim-host: $path"
    done <"$work/host-contents"
    # The vzdump hook: a path vzdump can run, calling the packaged binary.
    dpkg-deb -c "$host_deb" | grep -q '^-rwxr-xr-x .* \./usr/share/thintrim-host/vzdump-hook$' ||
        fail "thintrim-host's vzdump-hook is not executable: $(dpkg-deb -c "$host_deb" | grep vzdump-hook)"
    mkdir -p "$work/host-x"
    dpkg-deb -x "$host_deb" "$work/host-x"
    grep -q '^/usr/bin/thintrim-host vzdump-hook ' "$work/host-x/usr/share/thintrim-host/vzdump-hook" ||
        fail "vzdump-hook does not call /usr/bin/thintrim-host vzdump-hook"
    dpkg-deb -f "$host_deb" Depends | grep -q 'dbus' &&
        fail "thintrim-host depends on the bus: $(dpkg-deb -f "$host_deb" Depends)"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "Debian package: all checks passed"
