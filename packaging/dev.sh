#!/bin/bash
# dev.sh -- one entry point for newcomers and CI on a fresh Debian 12 machine (as root).
#
#   packaging/dev.sh demo    install deps, build, run the demo (a loop-backed thin image shrinks)
#   packaging/dev.sh test    install deps, build, build the .deb for this release and
#                            the Debian 13 one in a clean trixie chroot (its unit and
#                            cli suites run there against sdbus-c++ 2 and Catch2 3),
#                            run every test suite (the VM suite installs each .deb in
#                            a guest of its release), then the suites with C++ under
#                            test again under AddressSanitizer + UBSan, then the
#                            libFuzzer targets (tests/fuzz/run.sh, ~2 min)
#   packaging/dev.sh deps    only install the packages listed in packaging/deps.txt
#   packaging/dev.sh build   only build (into ./build)
#   packaging/dev.sh bench   thintrim next to fstrim on identical loop filesystems
#
# Environment: BUILD_DIR (default build), ASAN_BUILD_DIR (default build-asan),
# SKIP_DEPS=1 to skip the package step, SKIP_ASAN=1 to skip the sanitizer pass,
# SKIP_FUZZ=1 to skip fuzzing (FUZZ_SECONDS per target, default 30),
# SKIP_TRIXIE=1 to skip the Debian 13 package (its VM test then skips).
set -euo pipefail

top=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$top"
BUILD_DIR=${BUILD_DIR:-build}
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}

say() { printf '\n==> %s\n' "$*"; }

# deps.txt without comments; a line marked [RELEASE] only on that release.
packages() {
    local release
    release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' packaging/deps.txt |
        awk -v release="[$release]" 'NF == 1 || $2 == release { print $1 }'
}

install_deps() {
    [ "${SKIP_DEPS:-0}" = 1 ] && return 0
    local missing=()
    mapfile -t wanted < <(packages)
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: packages missing (${missing[*]}); run as root to install them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [meson options...]
build() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@"
    fi
    ninja -C "$dir"
}

# Prints "N passed, N failed, N skipped" from meson's test log: the closing
# line CI reads.
summarize() {
    python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
for line in open(sys.argv[1]):
    result = json.loads(line)["result"]
    key = {"OK": "passed", "SKIP": "skipped", "EXPECTEDFAIL": "passed"}.get(result, "failed")
    counts[key] += 1
print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
PY
}

# package RELEASE VARIABLE DIR: builds the .deb for RELEASE into DIR
# (packaging/build-deb.sh --release) and exports its path as VARIABLE.
package() {
    local release=$1 variable=$2 dir=$3 log deb
    log=$dir.log
    say "Debian package for $release (packaging/build-deb.sh --release $release)"
    rm -rf "$dir"
    if ! packaging/build-deb.sh --release "$release" "$dir" >"$log" 2>&1; then
        tail -60 "$log"
        echo "dev.sh: the $release package did not build (log: $log)" >&2
        return 1
    fi
    deb=$(readlink -f "$(ls "$dir"/thintrim_*.deb)")
    export "$variable=$deb"
    grep -E '^ *(Ok|Fail|Skipped): ' "$log" | tr -s ' ' || true
    echo "built $deb (log: $log)"
}

# run_tests DIR [meson test options...]
run_tests() {
    local dir=$1 rc=0
    shift
    meson test -C "$dir" --print-errorlogs "$@" || rc=$?
    summarize "$dir"
    return $rc
}

case "${1:-}" in
deps)
    install_deps
    ;;
build)
    install_deps
    build "$BUILD_DIR"
    ;;
demo)
    install_deps
    build "$BUILD_DIR"
    packaging/demo.sh "$BUILD_DIR/src/cli/thintrim"
    ;;
test)
    install_deps
    say "build"
    build "$BUILD_DIR"
    rc=0
    # One .deb per Debian release the VM suite boots, each built where it
    # belongs (on this machine when it is that release, else in a clean
    # chroot of it, cached): the package test checks the bookworm one, the
    # VM suite installs each in a guest of its release. The trixie build
    # also proves the tree against sdbus-c++ 2, Catch2 3, fmt 10 and gcc 14.
    package bookworm THINTRIM_DEB "$BUILD_DIR/deb" || rc=1
    if [ "${SKIP_TRIXIE:-0}" != 1 ]; then
        package trixie THINTRIM_DEB_TRIXIE "$BUILD_DIR/deb-trixie" || rc=1
    fi
    say "tests"
    run_tests "$BUILD_DIR" || rc=$?
    if [ "${SKIP_ASAN:-0}" != 1 ]; then
        say "build with AddressSanitizer and UndefinedBehaviorSanitizer"
        build "$ASAN_BUILD_DIR" -Db_sanitize=address,undefined -Db_lundef=false
        say "tests under the sanitizers"
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
        # Where C++ of ours runs: not the VM (the .deb is not instrumented),
        # package, lint, units or doc suites.
        run_tests "$ASAN_BUILD_DIR" --no-suite vm --no-suite package --no-suite lint \
            --no-suite units --no-suite doc || rc=$?
    fi
    if [ "${SKIP_FUZZ:-0}" != 1 ]; then
        # libFuzzer targets under ASan+UBSan, ~30 s each, two at a time.
        say "fuzzing (tests/fuzz/run.sh)"
        THINTRIM_FIXTURES="$BUILD_DIR/tests/fixtures" THINTRIM_MESON_BUILD="$BUILD_DIR" \
            tests/fuzz/run.sh "$BUILD_DIR-fuzz" || rc=$?
    fi
    exit $rc
    ;;
bench)
    install_deps
    build "$BUILD_DIR"
    tests/bench/trim-vs-fstrim.sh "$BUILD_DIR/src/cli/thintrim"
    ;;
*)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
