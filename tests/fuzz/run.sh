#!/bin/bash
# Builds the libFuzzer targets with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer and runs each for a bounded time, two at a time
# (CI has two cores): the whole run stays within about three minutes.
#
#   tests/fuzz/run.sh [BUILD-DIR]      default build-fuzz
#
# Seeds come from tests/data (configurations, state files, mount tables) and
# the extracted fixtures (THINTRIM_FIXTURES, default build/tests/fixtures)
# when present. A crash leaves its input in
# BUILD-DIR/crashes/TARGET/; turn it into a unit test with that input.
# The core includes meson's generated build_config.h: THINTRIM_MESON_BUILD
# names the configured meson build directory that holds it (default build).
# Environment: FUZZ_SECONDS (per target, default 30), CXX (default clang++).
set -euo pipefail
src=$(cd "$(dirname -- "$0")/../.." && pwd)
out=$(readlink -f -- "${1:-build-fuzz}")
seconds=${FUZZ_SECONDS:-30}
cxx=${CXX:-clang++}
command -v "$cxx" >/dev/null || {
	echo "fuzz: $cxx not found (packaging/deps.txt: clang, libclang-rt-14-dev)" >&2
	exit 77
}
meson_build=$(readlink -f -- "${THINTRIM_MESON_BUILD:-$src/build}")
[[ -f $meson_build/build_config.h ]] || {
	echo "fuzz: $meson_build/build_config.h not found: configure a meson build there first, or set THINTRIM_MESON_BUILD" >&2
	exit 1
}
mkdir -p "$out/obj"
# shellcheck disable=SC2054,SC2207 # -fsanitize lists; pkg-config words
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined
	-fno-sanitize-recover=undefined -D_FILE_OFFSET_BITS=64
	-I"$src/src/core" -I"$meson_build" $(pkg-config --cflags mount blkid))
# shellcheck disable=SC2207
libs=($(pkg-config --libs mount blkid libsystemd fmt) -pthread)

# The core once, with coverage for the fuzzer; make-style: only what changed.
objects=()
for source in "$src"/src/core/*/*.cpp; do
	object=$out/obj/$(basename "$source" .cpp).o
	objects+=("$object")
	if [[ ! $object -nt $source ]] || [[ $meson_build/build_config.h -nt $object ]] ||
		[[ -n $(find "$src/src/core" -name '*.h' -newer "$object") ]]; then
		echo "fuzz: compiling $(basename "$source")"
		"$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -c "$source" -o "$object" &
		(($(jobs -rp | wc -l) < 2)) || wait -n
	fi
done
wait

targets=(config units state mounts)
for target in "${targets[@]}"; do
	echo "fuzz: linking fuzz-$target"
	"$cxx" "${flags[@]}" -fsanitize=fuzzer -I"$src/tests/fuzz" \
		"$src/tests/fuzz/fuzz_$target.cpp" "${objects[@]}" "${libs[@]}" -o "$out/fuzz-$target" &
	(($(jobs -rp | wc -l) < 2)) || wait -n
done
wait

# seeds TARGET: the seed corpus directory of TARGET.
seeds() {
	local dir=$out/seeds/$1
	rm -rf "$dir"
	mkdir -p "$dir"
	case $1 in
	config) find "$src/tests/data/config" -type f -exec cp -t "$dir" {} + 2>/dev/null || true ;;
	units) printf '%s\n' 4096 512K 1.5G 2T 10% 100M/s 90 5min 1h30min 1w 250ms 10us \
		9223372036854775808us 15249w 16E -1 |
		while read -r value; do printf '%s' "$value" >"$dir/$(echo "$value" | tr '/%' '__')"; done ;;
	state) cp "$src"/tests/data/state/*.json "$dir"/ ;;
	mounts)
		cp "$src"/tests/data/*.mountinfo "$src"/tests/data/*.fstab "$dir"/
		fixtures=${THINTRIM_FIXTURES:-$src/build/tests/fixtures}
		if [[ -d $fixtures ]]; then
			find "$fixtures" \( -name mountinfo -o -name fstab -o -name crypttab \) \
				-type f | head -50 | while read -r file; do cp "$file" "$dir/$(echo "$file" | md5sum | cut -c1-12)"; done
		fi
		;;
	esac
	echo "$dir"
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0
run() {
	local target=$1 corpus crashes
	corpus=$out/corpus/$target
	crashes=$out/crashes/$target
	mkdir -p "$corpus" "$crashes"
	if "$out/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
		-max_len=65536 -artifact_prefix="$crashes/" -print_final_stats=1 \
		"$corpus" "$(seeds "$target")" >"$out/fuzz-$target.log" 2>&1; then
		echo "fuzz-$target: no crash in ${seconds}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz-$target.log" | grep -o '[0-9]*$') runs)"
	else
		echo "fuzz-$target: FAILED; input in $crashes/, log $out/fuzz-$target.log" >&2
		tail -40 "$out/fuzz-$target.log" >&2
		return 1
	fi
}
pids=()
for target in "${targets[@]}"; do
	run "$target" &
	pids+=($!)
	if ((${#pids[@]} == 2)); then
		wait "${pids[0]}" || rc=1
		pids=("${pids[1]}")
	fi
done
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
