#!/bin/bash
# test-rpm.sh -- packaging/rpm/thintrim.spec parses, matches the project's
# version, and builds:
#   1. rpmspec -P parses it (rpm's own parser, every macro expanded);
#   2. its Version: is meson.build's version;
#   3. rpmbuild -bb builds the binary package from a tarball of the work tree,
#      running %check, and the package holds the programs, the unit, the
#      D-Bus and polkit files, the man pages and the configuration (marked
#      %config), with systemd scriptlets.
# On Debian, rpm has neither the meson macros (Fedora's meson package) nor the
# systemd ones (systemd-rpm-macros) nor a package database with the build
# dependencies: this script loads minimal stand-ins for those macros, written
# for this test, and builds with --nodeps. Exit 77 (skip) without rpm's tools,
# and for step 3 before the top-level meson.build builds the daemon (the spec
# ships it). Inside an rpmbuild (RPM_BUILD_ROOT set) it skips, not to recurse.
set -uo pipefail

top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
spec=$top/packaging/rpm/thintrim.spec

if [ -n "${RPM_BUILD_ROOT:-}" ]; then
    echo "SKIP: already inside an rpmbuild"
    exit 77
fi
for tool in rpmspec rpmbuild rpm; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (Debian package rpm)"
        exit 77
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# Stand-ins for Fedora's macros.meson and macros.systemd: same names, same
# effect on this spec; only what it uses.
cat >"$work/macros.test" <<'EOF'
%_vpath_srcdir .
%_vpath_builddir redhat-linux-build
%__meson /usr/bin/meson
%meson \
    %{?set_build_flags}%{!?set_build_flags:export CFLAGS="%{optflags}" CXXFLAGS="%{optflags}";} \
    %{__meson} setup --buildtype=plain --prefix=%{_prefix} --libdir=%{_libdir} \\\
        --libexecdir=%{_libexecdir} --bindir=%{_bindir} --sbindir=%{_sbindir} \\\
        --includedir=%{_includedir} --datadir=%{_datadir} --mandir=%{_mandir} \\\
        --sysconfdir=%{_sysconfdir} --localstatedir=%{_localstatedir} \\\
        --sharedstatedir=%{_sharedstatedir} --wrap-mode=nodownload \\\
        %{_vpath_srcdir} %{_vpath_builddir} \\\
        %{nil}
%meson_build %{__meson} compile -C %{_vpath_builddir}
%meson_install DESTDIR=%{buildroot} %{__meson} install -C %{_vpath_builddir} --no-rebuild
%meson_test %{__meson} test -C %{_vpath_builddir} --print-errorlogs
%_unitdir /usr/lib/systemd/system
%systemd_requires %{nil}
%systemd_post() if [ $1 -eq 1 ]; then systemctl --no-reload preset %{?*} || :; fi
%systemd_preun() if [ $1 -eq 0 ]; then systemctl --no-reload disable --now %{?*} || :; fi
%systemd_postun_with_restart() if [ $1 -ge 1 ]; then systemctl try-restart %{?*} || :; fi
%debug_package %{nil}
EOF
macros=(--load "$work/macros.test")

# 1. Parse.
if ! rpmspec "${macros[@]}" -P "$spec" >"$work/parsed" 2>"$work/parse-errors"; then
    fail "rpmspec -P: $(cat "$work/parse-errors")"
elif [ -s "$work/parse-errors" ]; then
    fail "rpmspec -P warns: $(cat "$work/parse-errors")"
else
    echo "rpmspec -P: parsed"
fi

# 2. Version.
spec_version=$(rpmspec "${macros[@]}" -q --qf '%{version}\n' "$spec" 2>/dev/null | head -1)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -1)
[ "$spec_version" = "$meson_version" ] ||
    fail "the spec's Version: $spec_version is not meson.build's $meson_version"

# 3. Build.
if ! grep -q "^subdir('src/daemon')" "$top/meson.build"; then
    echo "SKIP (build): meson.build does not build src/daemon yet, and the spec ships it"
    [ "$failures" -eq 0 ] && exit 77
    exit 1
fi
topdir=$work/rpmbuild
mkdir -p "$topdir"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,BUILDROOT}
name=thintrim-$spec_version
mkdir "$work/$name"
"$top/packaging/copy-tree.sh" "$work/$name"
tar -C "$work" -czf "$topdir/SOURCES/$name.tar.gz" "$name"

if ! rpmbuild "${macros[@]}" --define "_topdir $topdir" --nodeps -bb "$spec" \
        >"$work/build.log" 2>&1; then
    tail -60 "$work/build.log"
    fail "rpmbuild -bb failed (log above)"
else
    rpm=$(ls "$topdir"/RPMS/*/thintrim-"$spec_version"-*.rpm 2>/dev/null | head -1)
    if [ -z "$rpm" ]; then
        fail "rpmbuild made no thintrim rpm"
    else
        echo "built $(basename "$rpm")"
        rpm -qlp "$rpm" >"$work/contents" 2>/dev/null
        for path in /usr/bin/thintrim /usr/sbin/thintrimd \
                /usr/lib/systemd/system/thintrimd.service \
                /usr/share/dbus-1/system.d/org.thintrim.ThinTrim1.conf \
                /usr/share/dbus-1/system-services/org.thintrim.ThinTrim1.service \
                /usr/share/polkit-1/actions/org.thintrim.ThinTrim1.policy \
                /etc/thintrim/thintrim.conf /etc/thintrim/thintrim.conf.d \
                /usr/share/bash-completion/completions/thintrim; do
            grep -qx "$path" "$work/contents" || fail "the rpm lacks $path"
        done
        for page in man1/thintrim.1 man5/thintrim.conf.5 man8/thintrimd.8; do
            grep -q "^/usr/share/man/$page" "$work/contents" || fail "the rpm lacks $page"
        done
        rpm -qp --configfiles "$rpm" 2>/dev/null | grep -qx /etc/thintrim/thintrim.conf ||
            fail "/etc/thintrim/thintrim.conf is not %config"
        scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
        for scriptlet in postinstall preuninstall postuninstall; do
            grep -A3 "^$scriptlet scriptlet" <<<"$scripts" | grep -q thintrimd.service ||
                fail "the $scriptlet scriptlet does not handle thintrimd.service"
        done
        grep -q thintrim-host "$work/contents" && fail "the thintrim rpm holds thintrim-host"
        host_rpm=$(ls "$topdir"/RPMS/*/thintrim-host-"$spec_version"-*.rpm 2>/dev/null | head -1)
        if [ -z "$host_rpm" ]; then
            fail "rpmbuild made no thintrim-host rpm"
        else
            # The list in a file: `rpm -qlp | grep -q` fails under pipefail
            # when grep stops reading before rpm has written every path.
            rpm -qlp "$host_rpm" >"$work/host-contents" 2>/dev/null
            for path in /usr/bin/thintrim-host /usr/share/bash-completion/completions/thintrim-host \
                /usr/share/thintrim-host/vzdump-hook; do
                grep -qx "$path" "$work/host-contents" || fail "the thintrim-host rpm lacks $path"
            done
        fi
        grep -q 'ExecStart=/usr/sbin/thintrimd' \
            <(rpm2cpio "$rpm" | (cd "$work" && cpio -i --to-stdout \
                ./usr/lib/systemd/system/thintrimd.service 2>/dev/null)) ||
            fail "the packaged unit does not start /usr/sbin/thintrimd"
    fi
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "RPM spec: all checks passed"
