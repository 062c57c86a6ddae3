# host-lib.sh -- sourced by the host-side meson tests (tests/vm/test-*.sh).
# shellcheck shell=bash disable=SC2154,SC2034  # $out, $here come from the test; image_s, run_s go to it
#
#   skip MSG / fail MSG          exit 77 / exit 1 with a message
#   need_vm_tools                skip unless root with qemu, qemu-img, mmdebstrap, jq
#   vm_release [DEFAULT]         sets $release: THINTRIM_VM_RELEASE (meson sets it
#                                per test), else DEFAULT, else bookworm
#   need_deb                     skip unless the .deb of $release is named: bookworm
#                                THINTRIM_DEB, trixie THINTRIM_DEB_TRIXIE (a glob
#                                matching one file is accepted; a relative path is
#                                tried from here, then from the top of the source
#                                tree); sets $deb to its absolute path
#   run_scenario NAME TIMEOUT    build-image.sh + run-vm.sh --release "$release"
#                                --out "$out" (--deb "$deb"); skips on 77,
#                                fails on any other error; sets $image_s $run_s.
#                                THINTRIM_VM_ASSERT_ONLY=1: no boot, assert on the
#                                output a previous run left in $out
#   alloc MARK DISK              allocated bytes of the disk image at that mark
#   gres KEY                     a value the guest recorded with `result`
#   mib BYTES                    "123.4"
#   pct PART WHOLE               "87.5"
# Needs $out (the run's output directory) set before run_scenario.

release=${THINTRIM_VM_RELEASE:-bookworm}
deb=

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

need_vm_tools() {
    [ "$(id -u)" -eq 0 ] || skip "the VM suite needs root"
    local tool
    for tool in qemu-system-x86_64 qemu-img mmdebstrap jq; do
        command -v "$tool" >/dev/null || skip "$tool not installed (run packaging/dev.sh deps)"
    done
}

vm_release() {
    release=${THINTRIM_VM_RELEASE:-${1:-bookworm}}
    case $release in
    bookworm|trixie) ;;
    *) fail "THINTRIM_VM_RELEASE=$release: bookworm or trixie" ;;
    esac
}

# The .deb must have been built on the guest's release: its Depends: name
# that release's sonames (libfmt9/libsdbus-c++1 on bookworm, libfmt10/
# libsdbus-c++2 on trixie), and the guest has no network to fetch others.
need_deb() {
    local var matches how
    case $release in
    bookworm) var=THINTRIM_DEB how="packaging/build-deb.sh /tmp/debs" ;;
    trixie) var=THINTRIM_DEB_TRIXIE how="a build in a trixie chroot" ;;
    *) fail "unknown release '$release'" ;;
    esac
    deb=${!var:-}
    if [ -z "$deb" ]; then
        skip "this test checks the installed thintrim package in a $release VM guest and $var is not" \
            "set: build the .deb on $release ($how) and run" \
            "$var=/tmp/debs/thintrim_VERSION_ARCH.deb meson test -C build --suite vm" \
            "(an absolute path; packaging/dev.sh does both)"
    fi
    # A relative path: meson runs the test in another directory than the one
    # it was given in; packaging/dev.sh gives build/deb/... from the top of
    # the source tree.
    case $deb in
    /*) ;;
    *) [ -e "$deb" ] || deb=$(cd "$here/../.." && pwd)/$deb ;;
    esac
    if [ ! -f "$deb" ]; then
        # THINTRIM_DEB=/tmp/debs/thintrim_*.deb: an assignment does not expand globs.
        mapfile -t matches < <(compgen -G "$deb" || true)
        if [ "${#matches[@]}" != 1 ] || [ ! -f "${matches[0]}" ]; then
            fail "$var=$deb: no such file (or a glob matching ${#matches[@]} files); give the absolute path of the .deb"
        fi
        deb=${matches[0]}
    fi
    case $deb in *.deb) ;; *) fail "$var=$deb is not a .deb" ;; esac
    deb=$(readlink -f "$deb")
    echo "thintrim package for $release: $deb ($(dpkg-deb -f "$deb" Version 2>/dev/null || echo '?'))"
}

run_scenario() {
    local name=$1 timeout=$2 rc=0 t0 t1 t2
    results=$out/results.tsv
    guest=$out/share/out/guest-results.tsv
    if [ "${THINTRIM_VM_ASSERT_ONLY:-0}" = 1 ]; then
        echo "THINTRIM_VM_ASSERT_ONLY=1: asserting on the previous run in $out"
        image_s=0 run_s=0
        return 0
    fi
    t0=$(date +%s)
    "$here/build-image.sh" --release "$release" || rc=$?
    [ "$rc" = 77 ] && skip "build-image.sh cannot run here"
    [ "$rc" = 0 ] || fail "the $release guest image did not build (see ${THINTRIM_VM_CACHE:-/var/cache/thintrim-vm}/$release/build.log)"
    t1=$(date +%s)
    # --deb always: run-vm.sh must not pick up a .deb of the environment that
    # need_deb did not check (a test without need_deb installs none).
    "$here/run-vm.sh" --release "$release" --deb "$deb" --out "$out" \
        --timeout "${THINTRIM_VM_TIMEOUT:-$timeout}" "$name" || rc=$?
    t2=$(date +%s)
    image_s=$((t1 - t0))
    run_s=$((t2 - t1))
    [ "$rc" = 77 ] && skip "run-vm.sh or the scenario skipped (see $out/share/out/guest.log)"
    [ "$rc" = 0 ] || fail "the $name scenario failed on $release (rc $rc); logs in $out (console.log, share/out/guest.log, share/out/thintrimd.journal)"
    [ -s "$results" ] || fail "no $results"
    [ -s "$guest" ] || fail "no $guest"
}

alloc() {
    awk -F'\t' -v m="$1" -v d="$2" '$1 == m && $2 == d {print $3; found = 1} END {exit !found}' "$results" ||
        fail "no sample for mark $1, disk $2 in $results"
}
gres() {
    awk -F'\t' -v k="$1" '$1 == k {v = $2; found = 1} END {if (found) print v; exit !found}' "$guest" ||
        fail "the guest did not record $1 (see $out/share/out/guest.log)"
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b ? 100 * a / b : 0}'; }
