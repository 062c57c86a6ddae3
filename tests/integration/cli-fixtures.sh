#!/bin/bash
# The CLI on captured sysfs trees: what a user reads from `thintrim stack` and
# `thintrim list` about real stacks, and the exit codes scripts rely on.
set -uo pipefail
: "${THINTRIM:?path of the thintrim binary}" "${THINTRIM_FIXTURES:?extracted fixtures}"

failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# on FIXTURE ARGS...: run thintrim against a capture; sets OUT and RC.
on() {
    local root=$THINTRIM_FIXTURES/$1
    shift
    OUT=$("$THINTRIM" --sysfs-root "$root" --mountinfo "$root/proc/self/mountinfo" \
        --fstab "${FSTAB:-/dev/null}" "$@" 2>&1)
    RC=$?
}

expect_rc() { [ "$RC" -eq "$1" ] || fail "$2: exit $RC, expected $1; output:"$'\n'"$OUT"; }
expect_out() { grep -qE -- "$1" <<<"$OUT" || fail "$2: output lacks /$1/:"$'\n'"$OUT"; }

on crypt-nodiscard stack /mnt/root
expect_rc 0 "stack on LUKS without discards"
expect_out '^Not eligible: .*dm-0' "names the crypt layer"
expect_out 'crypttab' "says how to fix it"
expect_out 'NO  <- drops discards' "marks the culprit row"
expect_out '└─sda' "draws the tree down to the disks"

on seed-stack stack /mnt/root
expect_rc 0 "stack on the seed stack"
expect_out '^Eligible' "seed stack passes discards"

on nodiscard-disk stack /mnt/nd-scsi
expect_out "Proxmox" "a disk without discard names the hypervisor setting"
expect_out "discard='unmap'" "and libvirt's"

on nodiscard-disk stack /dev/sdb
expect_rc 0 "stack on a device path"
expect_out 'sdb' "the device tree"

on raid5 stack /mnt/r5
expect_out 'devices_handle_discard_safely' "raid5 names the module parameter"

# doctor, with the /etc files it reads written here (nothing of the host's).
etc=$(mktemp -d)
trap 'rm -rf "$etc"' EXIT
mkdir -p "$etc/systemd/timers.target.wants"
ln -s /lib/systemd/system/fstrim.timer "$etc/systemd/timers.target.wants/fstrim.timer"
echo '/dev/sdb2 none swap sw 0 0' >"$etc/fstab"
echo 'seedcrypt UUID=2bb3afd2 none luks' >"$etc/crypttab"
doctor() { # doctor FIXTURE [ARGS...]
    local fixture=$1
    shift
    FSTAB=$etc/fstab on "$fixture" --swaps "$THINTRIM_FIXTURES/$fixture/proc/swaps" \
        --crypttab "$etc/crypttab" --lvm-conf "$etc/absent" --systemd-config "$etc/systemd" \
        doctor "$@"
}
doctor seed-stack
expect_rc 0 "doctor on a stack that passes discards"
expect_out '^warning +fstrim.timer: ' "doctor warns about fstrim.timer"
expect_out 'fix: systemctl disable --now fstrim.timer' "and says how to turn it off"
expect_out '^warning +/.*/crypttab: line 1: seedcrypt' "doctor names the crypttab line"
expect_out '^warning +/dev/sdb2: swap' "doctor: swap without discard"
expect_out '^info +/.*/absent: issue_discards is not set' "doctor: lvm.conf default"
expect_out '^info +thintrim verify: no verify verdict at hand' "doctor suggests verify without a verdict"
expect_out '^0 error, 3 warning, 2 info, [0-9]+ ok$' "doctor counts findings"
doctor crypt-nodiscard
expect_rc 1 "doctor exits 1 when a filesystem drops discards"
expect_out '^error +/mnt/root: discards do not reach the disk: .*crypttab' "doctor names dm-crypt"
doctor crypt-nodiscard --json
python3 -c 'import json,sys
d=json.load(sys.stdin)
assert d["source"]=="local", d["source"]
assert {"severity","subject","message","hint"} <= set(d["findings"][0])' <<<"$(sed -n '/^{/,$p' <<<"$OUT")" ||
    fail "doctor --json: source and finding fields"$'\n'"$OUT"

on mixed list --all --json
expect_rc 0 "list --all --json"
for pair in '/mnt/ro read-only' '/mnt/tmp pseudo' '/mnt/ovl not-block-device' \
    '/mnt/twice2 duplicate' '/proc pseudo'; do
    set -- $pair
    python3 -c 'import json,sys
d=json.load(sys.stdin)
m=[f for f in d["filesystems"] if f["mount_point"]==sys.argv[1]]
sys.exit(0 if any(f["skip_reason"]==sys.argv[2] for f in m) else 1)' "$1" "$2" <<<"$OUT" ||
        fail "list --all --json: $1 should be skipped as $2"
done

on mixed list
expect_out '^/mnt/twice1 ' "the managed mount is listed"
grep -q '^/mnt/tmp ' <<<"$OUT" && fail "list without --all hides skipped mounts"
expect_out 'mounts skipped; --all shows them' "and says so"

on mixed stack /mnt/nowhere
expect_rc 1 "stack on an unknown path"
expect_out '/mnt/nowhere is neither a mount point nor a block device' "says what is wrong"

on mixed trim --local --chunk 12Q /mnt/twice1
expect_rc 1 "a bad size"
expect_out '--chunk: invalid value "12Q"' "names the option and the value"

on mixed trim --local --dry-run /mnt/tmp
expect_rc 1 "trimming a skipped mount"
expect_out '/mnt/tmp is not trimmed: ' "says why"

on mixed frobnicate
expect_rc 2 "an unknown command is a usage error"

# [Filesystems] UserMedia= decides for the local reading as for thintrimd:
# udisks mounts and removable devices are skipped unless it is yes.
data=$(dirname -- "$(readlink -f -- "$0")")/../data
mkdir -p "$etc/units"
printf '[Filesystems]\nUserMedia=yes\n' >"$etc/user-media.conf"
: >"$etc/defaults.conf"
user_media() { # CONFIG [ARGS...]: list --all on a table with user mounts
    local config=$1
    shift
    OUT=$("$THINTRIM" --sysfs-root "$THINTRIM_FIXTURES/nodiscard-disk" --mountinfo "$data/user-media.mountinfo" \
        --fstab "$data/user-media.fstab" --systemd-config "$etc/units" list --all --config "$config" "$@" 2>&1)
    RC=$?
}
user_media "$etc/defaults.conf"
expect_rc 0 "list --all with user mounts"
expect_out '^/media/alice/STICK .*mounted by a user' "a udisks mount is skipped by default"
expect_out '^/run/media/bob/image .*mounted by a user' "under /run/media too"
user_media "$etc/user-media.conf"
grep -q 'mounted by a user' <<<"$OUT" && fail "UserMedia=yes: user mounts are not skipped:"$'\n'"$OUT"
user_media "$etc/absent.conf"
expect_rc 1 "a --config file that does not exist"
expect_out 'absent.conf' "is named"

# A removable disk (sysfs `removable`), in a copy of a capture.
cp -a "$THINTRIM_FIXTURES/nodiscard-disk" "$etc/removable"
echo 1 >"$(readlink -f "$etc/removable/sys/dev/block/8:16")/removable"
removable() { # CONFIG
    OUT=$("$THINTRIM" --sysfs-root "$etc/removable" --mountinfo "$etc/removable/proc/self/mountinfo" \
        --fstab /dev/null list --all --config "$1" 2>&1)
    RC=$?
}
removable "$etc/defaults.conf"
expect_out '^/mnt/nd-scsi .*removable device \(sdb\)' "a filesystem on a removable disk is skipped by default"
removable "$etc/user-media.conf"
grep -q 'removable device' <<<"$OUT" && fail "UserMedia=yes: the removable disk is not skipped:"$'\n'"$OUT"

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all CLI fixture checks passed"
