# shellcheck shell=bash
# loopfs.sh - shared helpers for thintrim's loop-device tests, demo and
# benchmark: sparse images on loop devices with real filesystems on them,
# allocated-size probes, and a cleanup that always runs.
#
# Source it, then:
#   loopfs_require_root_loop             # exit 77 unless we can use loop devices
#   loopfs_require_mkfs ext4 xfs         # exit 77 when a mkfs is missing
#   loopfs_setup thintrim-test           # per-run dir, cleanup trap
#   loopfs_new_fs ext4 e4 1G             # image + loop + mkfs + mount
#   echo "$LOOPFS_MNT $LOOPFS_DEV $LOOPFS_IMG"
#
# Everything this library creates is recorded in state files inside the run
# directory, so helpers also work inside $(...) subshells, and the cleanup
# only ever touches loop devices whose backing file lies inside the run
# directory and mounts below it.  Other users' loop devices and mounts are
# never looked at beyond reading sysfs/mountinfo.
#
# Results of helpers that create something are returned in globals
# (LOOPFS_IMG, LOOPFS_DEV, LOOPFS_MNT) and also printed on stdout by the
# single-purpose helpers (loopfs_image, loopfs_attach, loopfs_mount).

# Results of the helpers that create something (read by the sourcing script).
# shellcheck disable=SC2034
LOOPFS_IMG='' LOOPFS_DEV='' LOOPFS_MNT='' LOOPFS_PART=''

# --- messages and assertions ------------------------------------------------

LOOPFS_FAILURES=0
LOOPFS_CHECKS=0
LOOPFS_NAME=${LOOPFS_NAME:-${0##*/}}

loopfs_log() { printf '%s: %s\n' "$LOOPFS_NAME" "$*" >&2; }

# Fatal: print and exit 1 (the EXIT trap cleans up).
loopfs_die() {
	printf '%s: FATAL: %s\n' "$LOOPFS_NAME" "$*" >&2
	exit 1
}

# Skip the whole script (meson/automake "skipped" exit code).
loopfs_skip() {
	printf '%s: SKIP: %s\n' "$LOOPFS_NAME" "$*" >&2
	exit 77
}

loopfs_pass() {
	LOOPFS_CHECKS=$((LOOPFS_CHECKS + 1))
	printf 'ok %d - %s\n' "$LOOPFS_CHECKS" "$1"
}

# fail WHAT [EXPECTED GOT]: record a failed check and go on.
fail() {
	LOOPFS_CHECKS=$((LOOPFS_CHECKS + 1))
	LOOPFS_FAILURES=$((LOOPFS_FAILURES + 1))
	printf 'not ok %d - %s\n' "$LOOPFS_CHECKS" "$1"
	if [[ $# -ge 3 ]]; then
		printf '#   expected: %s\n#   got:      %s\n' "$2" "$3"
	elif [[ $# -eq 2 ]]; then
		printf '#   %s\n' "$2"
	fi
}

# assert_eq WHAT EXPECTED GOT
assert_eq() {
	if [[ "$2" == "$3" ]]; then loopfs_pass "$1"; else fail "$1" "$2" "$3"; fi
}

# assert_match WHAT ERE TEXT
assert_match() {
	if [[ "$3" =~ $2 ]]; then loopfs_pass "$1"; else fail "$1" "text matching /$2/" "$3"; fi
}

# assert_no_match WHAT ERE TEXT
assert_no_match() {
	if [[ "$3" =~ $2 ]]; then fail "$1" "text not matching /$2/" "$3"; else loopfs_pass "$1"; fi
}

# assert_cmp WHAT A OP B (integers; OP one of -lt -le -eq -ne -ge -gt)
assert_cmp() {
	if [[ "$2" =~ ^-?[0-9]+$ && "$4" =~ ^-?[0-9]+$ ]] && test "$2" "$3" "$4"; then
		loopfs_pass "$1"
	else
		fail "$1" "$2 $3 $4" "false ($2 vs $4)"
	fi
}

# assert_true WHAT CMD...: the command must succeed
assert_true() {
	local what=$1
	shift
	if "$@"; then loopfs_pass "$what"; else fail "$what" "command to succeed: $*" "exit $?"; fi
}

# Summary line; exit 1 if any check failed.
loopfs_finish() {
	if ((LOOPFS_FAILURES > 0)); then
		printf '# %d of %d checks FAILED\n' "$LOOPFS_FAILURES" "$LOOPFS_CHECKS"
		exit 1
	fi
	printf '# all %d checks passed\n' "$LOOPFS_CHECKS"
	exit 0
}

# --- skip helpers -----------------------------------------------------------

loopfs_require_root_loop() {
	[[ $EUID -eq 0 ]] || loopfs_skip "needs root (loop devices, mount)"
	[[ -c /dev/loop-control ]] || loopfs_skip "no /dev/loop-control (loop driver missing?)"
	loopfs_require_cmd losetup mount umount truncate stat
}

loopfs_require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || loopfs_skip "command '$c' not found"
	done
}

# loopfs_require_mkfs FSTYPE...: mkfs.FSTYPE present and the kernel knows it
loopfs_require_mkfs() {
	local t
	for t in "$@"; do
		command -v "mkfs.$t" >/dev/null 2>&1 || loopfs_skip "mkfs.$t not found (package for $t missing)"
		if ! grep -qw "$t" /proc/filesystems; then
			modprobe "$t" >/dev/null 2>&1 || true
			grep -qw "$t" /proc/filesystems || loopfs_skip "kernel has no $t support"
		fi
	done
}

# --- sizes ------------------------------------------------------------------

# Bytes actually allocated to FILE on the host filesystem.
loopfs_alloc_bytes() {
	local blocks unit
	read -r blocks unit < <(stat -c '%b %B' -- "$1") || return 1
	echo $((blocks * unit))
}

# Human readable, binary units, one decimal: 1.2 GiB
loopfs_human() {
	awk -v b="$1" 'BEGIN {
		split("B KiB MiB GiB TiB", u, " "); i = 1
		while (b >= 1024 && i < 5) { b /= 1024; i++ }
		if (i == 1) printf "%d B", b; else printf "%.1f %s", b, u[i] }'
}

# --- run directory and cleanup ----------------------------------------------

LOOPFS_RUN=
LOOPFS_CLEANED=0

# loopfs_setup PREFIX: create the per-run directory and register the cleanup.
# The directory lives on a disk filesystem (default /var/tmp, override with
# THINTRIM_TEST_TMPDIR) that can punch holes into sparse files, otherwise
# a discard through the loop device cannot shrink the image.
loopfs_setup() {
	local base=${THINTRIM_TEST_TMPDIR:-/var/tmp}
	trap 'loopfs_cleanup' EXIT
	trap 'loopfs_log "interrupted"; exit 130' INT
	trap 'loopfs_log "terminated"; exit 143' TERM
	trap 'exit 129' HUP
	LOOPFS_RUN=$(mktemp -d "$base/${1:-loopfs}.XXXXXX") || loopfs_die "cannot create a run directory in $base"
	# resolve symlinks so that comparisons with sysfs/mountinfo paths work
	LOOPFS_RUN=$(realpath -- "$LOOPFS_RUN")
	mkdir -p "$LOOPFS_RUN/.state" "$LOOPFS_RUN/mnt"
	: >"$LOOPFS_RUN/.state/mounts"
	: >"$LOOPFS_RUN/.state/loops"
	: >"$LOOPFS_RUN/.state/zeroed"
	: >"$LOOPFS_RUN/.state/pids"
	_loopfs_watch
	loopfs_check_punch_hole
}

# meson kills a test that outlives its timeout with SIGKILL 0.5 s after
# SIGTERM, too soon for the EXIT trap: a watcher in a session of its own
# runs the same cleanup once this script is gone. After a normal exit the
# trap has removed the run directory and the watcher has nothing to do.
_loopfs_watch() {
	local lib
	lib=$(realpath -- "${BASH_SOURCE[0]}")
	# shellcheck disable=SC2016 # expanded by the watcher
	setsid -f bash -c 'cd / && tail --pid="$1" -f /dev/null
		LOOPFS_NAME=$2 source "$3" && LOOPFS_RUN=$4 && loopfs_cleanup' \
		loopfs-watch "$$" "$LOOPFS_NAME" "$lib" "$LOOPFS_RUN" </dev/null >/dev/null 2>&1
}

# Start time of process PID (clock ticks since boot): with the PID it names
# one process, so a PID the kernel reused is never signalled.
_loopfs_pid_start() {
	local stat fields
	{ stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
	read -ra fields <<<"${stat##*) }"
	printf '%s\n' "${fields[19]}"
}

# loopfs_track_pid PID: a process this run started (a daemon, a bus, a
# helper) that the cleanup stops if it is still running.
loopfs_track_pid() {
	local start
	start=$(_loopfs_pid_start "$1") || return 0
	printf '%s %s\n' "$1" "$start" >>"$LOOPFS_RUN/.state/pids"
}

# SIGTERM to each tracked process still running, SIGKILL after 5 s.
_loopfs_stop_pids() {
	local pid start alive=() i
	while read -r pid start; do
		[[ $(_loopfs_pid_start "$pid" 2>/dev/null) == "$start" ]] || continue
		kill -TERM "$pid" 2>/dev/null && alive+=("$pid $start")
	done <"$LOOPFS_RUN/.state/pids"
	for i in $(seq 1 50); do
		local left=()
		for pid in "${alive[@]}"; do
			[[ $(_loopfs_pid_start "${pid% *}" 2>/dev/null) == "${pid#* }" ]] && left+=("$pid")
		done
		alive=("${left[@]}")
		((${#alive[@]})) || return 0
		sleep 0.1
	done
	for pid in "${alive[@]}"; do
		loopfs_log "cleanup: process ${pid% *} did not stop on SIGTERM; killing it"
		kill -KILL "${pid% *}" 2>/dev/null
	done
	sleep 0.2
}

loopfs_check_punch_hole() {
	local f=$LOOPFS_RUN/.punch-probe before after
	command -v fallocate >/dev/null 2>&1 || return 0
	head -c 4194304 /dev/urandom >"$f" && sync -- "$f" 2>/dev/null
	before=$(loopfs_alloc_bytes "$f")
	if ! fallocate --punch-hole --keep-size --offset 0 --length 4194304 -- "$f" 2>/dev/null; then
		rm -f -- "$f"
		loopfs_skip "$(dirname -- "$LOOPFS_RUN") cannot punch holes in files; set THINTRIM_TEST_TMPDIR to a directory on ext4/xfs/btrfs"
	fi
	after=$(loopfs_alloc_bytes "$f")
	rm -f -- "$f"
	((after < before)) || loopfs_skip "punching holes does not free space in $(dirname -- "$LOOPFS_RUN"); set THINTRIM_TEST_TMPDIR"
}

# Is PATH the run directory or below it?
_loopfs_is_ours() {
	[[ -n $LOOPFS_RUN && ( $1 == "$LOOPFS_RUN" || $1 == "$LOOPFS_RUN"/* ) ]]
}

# Mount points below the run directory, deepest first (mountinfo field 5,
# with the octal escapes of spaces etc. decoded).
_loopfs_our_mounts() {
	local mp LC_ALL=C # see loopfs_cleanup
	while read -r _ _ _ _ mp _; do
		mp=$(printf '%b' "${mp//\\/\\0}")
		_loopfs_is_ours "$mp" && printf '%s\n' "$mp"
	done </proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

# Loop device names (loopN) whose backing file lies inside the run directory.
_loopfs_our_loops() {
	local bf f
	for bf in /sys/block/loop*/loop/backing_file; do
		[[ -r $bf ]] || continue
		f=$(<"$bf") 2>/dev/null || continue
		f=${f% (deleted)}
		if _loopfs_is_ours "$f"; then
			f=${bf#/sys/block/}
			printf '%s\n' "${f%%/*}"
		fi
	done
}

# Is /dev/loopN (argument: loopN) bound to a file of ours right now?
_loopfs_loop_is_ours() {
	local f
	f=$(cat "/sys/block/$1/loop/backing_file" 2>/dev/null) || return 1
	_loopfs_is_ours "${f% (deleted)}"
}

_loopfs_umount() {
	local mp=$1 i
	for i in 1 2 3 4 5; do
		umount -- "$mp" 2>/dev/null && return 0
		grep -qF " $mp " /proc/self/mountinfo || return 0
		sleep 0.3
	done
	loopfs_log "cleanup: $mp is busy, detaching it lazily"
	umount -l -- "$mp" 2>/dev/null
}

# Remove and re-create /dev/loopN so that sysfs queue limits changed by a test
# (discard_max_bytes=0 survives losetup -d) are back to the kernel defaults.
_loopfs_recreate_loop() {
	local n=${1#loop} ctl i err
	ctl=$(loopfs_loopctl) || { loopfs_log "cleanup: cannot recreate loop$n: loopctl not available"; return 1; }
	# wait for the (possibly deferred) detach
	for i in $(seq 1 50); do
		[[ -e /sys/block/loop$n/loop/backing_file ]] || break
		sleep 0.1
	done
	if [[ -e /sys/block/loop$n/loop/backing_file ]]; then
		loopfs_log "cleanup: loop$n is bound again (to $(cat "/sys/block/loop$n/loop/backing_file" 2>/dev/null)); not removing it"
		return 1
	fi
	for i in $(seq 1 20); do
		if err=$("$ctl" remove "$n" 2>&1); then
			# EEXIST: someone else's losetup already created loopN afresh
			err=$("$ctl" add "$n" 2>&1) || [[ $err == *"exists"* ]] || loopfs_log "cleanup: $err"
			return 0
		fi
		[[ $err == *"No such device"* ]] && return 0
		# EBUSY: still being released, or grabbed by someone else meanwhile
		[[ -e /sys/block/loop$n/loop/backing_file ]] && break
		sleep 0.2
	done
	loopfs_log "cleanup: could not recreate loop$n: $err"
	return 1
}

# The cleanup: unmount, detach, recreate discard-zeroed loops, remove the
# run directory.  Idempotent; keeps the script's exit status.
loopfs_cleanup() {
	local rc=$? mp dev n
	# Bytes, not characters: in a UTF-8 locale bash's read takes the newline
	# after an invalid byte as part of the character (a mount point named
	# $'caf\xe9' swallowed the next line and neither was unmounted).
	local LC_ALL=C
	((LOOPFS_CLEANED)) && return "$rc"
	LOOPFS_CLEANED=1
	[[ -n $LOOPFS_RUN && -d $LOOPFS_RUN ]] || return "$rc"
	set +e
	trap '' INT TERM HUP # a second Ctrl-C must not leave things half done
	local state=$LOOPFS_RUN/.state

	# 0. processes of this run that may hold its mounts open
	[[ -s $state/pids ]] && _loopfs_stop_pids

	# 1. mounts we made (reverse order), then anything else below the run dir
	if [[ -s $state/mounts ]]; then
		while read -r mp; do
			grep -qF " $mp " /proc/self/mountinfo && _loopfs_umount "$mp"
		done < <(tac "$state/mounts")
	fi
	while read -r mp; do
		[[ -n $mp ]] && _loopfs_umount "$mp"
	done < <(_loopfs_our_mounts)

	# 2. loops bound to our images: the ones we recorded, then a sysfs sweep
	{
		[[ -s $state/loops ]] && cat "$state/loops"
		_loopfs_our_loops
	} | sort -u | while read -r dev; do
		[[ -n $dev ]] || continue
		if _loopfs_loop_is_ours "$dev"; then
			losetup -d "/dev/$dev" 2>/dev/null || loopfs_log "cleanup: losetup -d /dev/$dev failed"
		fi
	done

	# 3. loops whose discard limits we changed
	if [[ -s $state/zeroed ]]; then
		sort -u "$state/zeroed" | while read -r n; do
			[[ -n $n ]] && _loopfs_recreate_loop "$n"
		done
	fi

	# 4. the run directory, unless something is still mounted below it
	if [[ -n $(_loopfs_our_mounts) ]]; then
		loopfs_log "cleanup: mounts remain below $LOOPFS_RUN; leaving it in place"
	else
		rm -rf --one-file-system -- "$LOOPFS_RUN"
	fi
	return "$rc"
}

# Run the cleanup now and verify that nothing of this run is left: no mount
# below the run directory, no loop device bound to one of its images, and the
# run directory gone.  Records checks (pass/fail).
loopfs_verify_cleanup() {
	local run=$LOOPFS_RUN left_m left_l
	loopfs_cleanup
	left_m=$(_loopfs_our_mounts | tr '\n' ' ')
	left_l=$(_loopfs_our_loops | tr '\n' ' ')
	assert_eq "cleanup: no mount of this run remains" "" "$left_m"
	assert_eq "cleanup: no loop device of this run remains" "" "$left_l"
	if [[ -e $run ]]; then fail "cleanup: run directory removed" "$run gone" "still there"; else loopfs_pass "cleanup: run directory removed"; fi
}

# --- images, loops, filesystems ---------------------------------------------

# loopfs_image NAME SIZE: sparse image file in the run dir (prints its path)
loopfs_image() {
	LOOPFS_IMG=$LOOPFS_RUN/$1.img
	truncate -s "$2" -- "$LOOPFS_IMG" || loopfs_die "truncate -s $2 $LOOPFS_IMG failed"
	printf '%s\n' "$LOOPFS_IMG"
}

# loopfs_attach IMAGE [-P]: free loop device bound to IMAGE (prints /dev/loopN)
loopfs_attach() {
	local img=$1 dev
	shift
	dev=$(losetup -f --show "$@" -- "$img") || loopfs_die "losetup -f --show $* $img failed"
	printf '%s\n' "${dev#/dev/}" >>"$LOOPFS_RUN/.state/loops"
	LOOPFS_DEV=$dev
	printf '%s\n' "$dev"
}

# loopfs_wait_dev DEV [TENTHS]: wait (default 5 s) for a block device node
loopfs_wait_dev() {
	local i
	for i in $(seq 1 "${2:-50}"); do
		[[ -b $1 ]] && return 0
		sleep 0.1
	done
	return 1
}

# loopfs_mkfs FSTYPE DEV [LABEL]: quiet mkfs, no discard at mkfs time (the
# image stays sparse and the tests measure only what the trim frees), and
# nothing that keeps writing in the background after mount.
loopfs_mkfs() {
	local t=$1 dev=$2 label=${3:-tt-$1} out
	case $t in
	ext4) out=$(mkfs.ext4 -q -F -L "$label" -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 -- "$dev" 2>&1) ;;
	xfs) out=$(mkfs.xfs -q -f -K -L "$label" -- "$dev" 2>&1) ;;
	btrfs) out=$(mkfs.btrfs -q -f -K -L "$label" -- "$dev" 2>&1) ;;
	*) loopfs_die "loopfs_mkfs: unsupported filesystem type $t" ;;
	esac || loopfs_die "mkfs.$t $dev failed: $out"
}

# Mount options: no online discard (btrfs enables discard=async by default on
# discard-capable devices since 6.2, which would free space before the trim),
# no ext4 background inode table zeroing.
loopfs_default_opts() {
	case $1 in
	ext4) echo nodiscard,noinit_itable ;;
	btrfs) echo nodiscard ;;
	*) echo nodiscard ;;
	esac
}

# loopfs_mount DEV NAME [OPTIONS] [FSTYPE]: mount at $LOOPFS_RUN/mnt/NAME
loopfs_mount() {
	local dev=$1 mp=$LOOPFS_RUN/mnt/$2 opts=${3:-} t=${4:-} out
	mkdir -p -- "$mp"
	printf '%s\n' "$mp" >>"$LOOPFS_RUN/.state/mounts"
	out=$(mount ${t:+-t "$t"} ${opts:+-o "$opts"} -- "$dev" "$mp" 2>&1) ||
		loopfs_die "mount ${opts:+-o $opts }$dev $mp failed: $out"
	LOOPFS_MNT=$mp
	printf '%s\n' "$mp"
}

# loopfs_bind SRC NAME [ro]: bind mount SRC at $LOOPFS_RUN/mnt/NAME
loopfs_bind() {
	local src=$1 mp=$LOOPFS_RUN/mnt/$2 out
	mkdir -p -- "$mp"
	printf '%s\n' "$mp" >>"$LOOPFS_RUN/.state/mounts"
	out=$(mount --bind -- "$src" "$mp" 2>&1) || loopfs_die "mount --bind $src $mp failed: $out"
	if [[ ${3:-} == ro ]]; then
		out=$(mount -o remount,bind,ro -- "$mp" 2>&1) || loopfs_die "remount,bind,ro $mp failed: $out"
	fi
	LOOPFS_MNT=$mp
	printf '%s\n' "$mp"
}

# loopfs_new_fs FSTYPE NAME SIZE [MOUNT-OPTS]: image + loop + mkfs + mount.
# Sets LOOPFS_IMG, LOOPFS_DEV, LOOPFS_MNT (call it directly, not in $(...)).
loopfs_new_fs() {
	local t=$1 name=$2 size=$3 opts=${4:-}
	[[ -n $opts ]] || opts=$(loopfs_default_opts "$t")
	loopfs_image "$name" "$size" >/dev/null
	loopfs_attach "$LOOPFS_IMG" >/dev/null
	loopfs_mkfs "$t" "$LOOPFS_DEV" "tt-$name"
	loopfs_mount "$LOOPFS_DEV" "$name" "$opts" "$t" >/dev/null
}

# loopfs_remove_fs MOUNTPOINT DEV IMAGE: unmount, detach and delete one
# filesystem made by loopfs_new_fs before the end of the run (the benchmark
# does this to keep the disk usage of a run small).
loopfs_remove_fs() {
	_loopfs_umount "$1"
	_loopfs_loop_is_ours "${2#/dev/}" && losetup -d "$2"
	rm -f -- "$3"
}

# loopfs_partition /dev/loopN FIRST: a GPT with a FIRST-sized (sfdisk size,
# e.g. 1GiB) first partition and the rest as second; returns once both
# partition devices exist.  The loop must be attached with -P.
loopfs_partition() {
	local dev=$1 first=$2 out
	loopfs_require_cmd sfdisk partx
	out=$(printf 'label: gpt\n,%s\n,\n' "$first" | sfdisk -q -- "$dev" 2>&1) ||
		loopfs_die "sfdisk $dev failed: $out"
	# sfdisk asks the kernel to re-read the table (losetup -P enabled
	# partition scanning); a kernel built without partition table parsers
	# (CONFIG_EFI_PARTITION=n) finds nothing, so tell it the partitions
	# from user space then.  Detaching the loop drops them either way.
	if ! loopfs_wait_dev "${dev}p2" 10; then
		out=$(partx -a -- "$dev" 2>&1) || loopfs_die "partx -a $dev failed: $out"
		loopfs_wait_dev "${dev}p2" || loopfs_die "partition ${dev}p2 did not appear"
	fi
}

# loopfs_new_partitioned NAME SIZE FSTYPE: image attached with -P, GPT with a
# 32 MiB first partition and the rest as second; FSTYPE on p2, mounted.
# Sets LOOPFS_IMG, LOOPFS_DEV (the whole loop), LOOPFS_PART, LOOPFS_MNT.
loopfs_new_partitioned() {
	local name=$1 size=$2 t=$3 out
	loopfs_require_cmd sfdisk partx
	loopfs_image "$name" "$size" >/dev/null
	loopfs_attach "$LOOPFS_IMG" -P >/dev/null
	loopfs_partition "$LOOPFS_DEV" 32MiB
	LOOPFS_PART=${LOOPFS_DEV}p2
	loopfs_mkfs "$t" "$LOOPFS_PART" "tt-$name"
	loopfs_mount "$LOOPFS_PART" "$name" "$(loopfs_default_opts "$t")" "$t" >/dev/null
}

# loopfs_zero_discard /dev/loopN: make the loop refuse discards
# (queue/discard_max_bytes = 0).  The device is recorded first, so that the
# cleanup removes and re-creates it even if this script dies right after.
loopfs_zero_discard() {
	local dev=${1#/dev/}
	loopfs_loopctl >/dev/null || loopfs_die "loopctl is needed to restore $1 after zeroing its discard limit (set THINTRIM_LOOPCTL)"
	printf '%s\n' "$dev" >>"$LOOPFS_RUN/.state/zeroed"
	echo 0 >"/sys/block/$dev/queue/discard_max_bytes" || loopfs_die "cannot write /sys/block/$dev/queue/discard_max_bytes"
}

# Path of the loopctl helper: $THINTRIM_LOOPCTL, next to a build tree's CLI
# ($THINTRIM = BUILD/src/cli/thintrim -> BUILD/tests/loopctl), or compiled
# from tests/tools/loopctl.cpp into the run directory as a last resort.
loopfs_loopctl() {
	local cand src
	for cand in "${THINTRIM_LOOPCTL:-}" \
		"${THINTRIM:+$(dirname -- "$THINTRIM")/../../tests/loopctl}" \
		"${LOOPFS_RUN:+$LOOPFS_RUN/.state/loopctl}"; do
		if [[ -n $cand && -x $cand ]]; then
			printf '%s\n' "$cand"
			return 0
		fi
	done
	src=$(dirname -- "${BASH_SOURCE[0]}")/../tools/loopctl.cpp
	if [[ -n $LOOPFS_RUN && -r $src ]] && command -v "${CXX:-c++}" >/dev/null 2>&1 &&
		"${CXX:-c++}" -std=c++20 -O1 -o "$LOOPFS_RUN/.state/loopctl" "$src" 2>/dev/null; then
		printf '%s\n' "$LOOPFS_RUN/.state/loopctl"
		return 0
	fi
	return 1
}

# --- data -------------------------------------------------------------------

# loopfs_write_mib FILE MIB: write MIB MiB of incompressible-ish data, then
# sync.  /dev/urandom manages well under 100 MB/s on small VMs, so the data is
# an 8 MiB random seed (made once per run) repeated: no compressor with a
# window below 8 MiB shrinks it, and every write of a run - every filesystem,
# both sides of the benchmark - gets the same bytes.
loopfs_write_mib() {
	local file=$1 bytes=$(($2 * 1048576)) seed=$LOOPFS_RUN/.state/seed
	if [[ ! -s $seed ]]; then
		if ! head -c 8388608 /dev/urandom >"$seed.tmp" || ! mv -- "$seed.tmp" "$seed"; then
			loopfs_die "cannot create the random seed $seed"
		fi
	fi
	local n=$((bytes / 8388608)) i
	{
		for ((i = 0; i < n; i++)); do cat -- "$seed"; done
		head -c $((bytes % 8388608)) -- "$seed"
	} >"$file" || loopfs_die "writing $2 MiB to $file failed"
	[[ $(stat -c %s -- "$file" 2>/dev/null) == "$bytes" ]] || loopfs_die "writing $2 MiB to $file failed"
	sync
}

# loopfs_delete FILE...: delete and sync (the space is free in the guest
# filesystem but stays allocated in the image until a trim).
loopfs_delete() {
	rm -f -- "$@" && sync
}

# loopfs_settle MOUNTPOINT: after deleting, make the freed space trimmable
# now.  sync is enough for ext4 and btrfs; XFS keeps freed extents "busy"
# (FITRIM skips them) for a fraction of a second after the sync, so an XFS
# filesystem is unmounted and mounted again, which retires them at once.
loopfs_settle() {
	local mp=$1 src fstype opts out
	sync
	read -r src fstype opts < <(findmnt -n -o SOURCE,FSTYPE,VFS-OPTIONS --mountpoint "$mp") ||
		loopfs_die "loopfs_settle: $mp is not a mount point"
	[[ $fstype == xfs ]] || return 0
	umount -- "$mp" || loopfs_die "loopfs_settle: umount $mp failed"
	out=$(mount -t xfs -o "$opts,nodiscard" -- "$src" "$mp" 2>&1) || loopfs_die "loopfs_settle: mount $src $mp failed: $out"
}

# loopfs_mountinfo FILE: /proc/self/mountinfo reduced to the mounts below the
# run directory, for thintrim --mountinfo (so --all never sees the machine's
# own filesystems).
loopfs_mountinfo() {
	awk -v run="$LOOPFS_RUN/" 'index($5, run) == 1' /proc/self/mountinfo >"$1"
}
