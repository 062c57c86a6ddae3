#!/bin/bash
# `thintrim list --json` has one schema (issue 10, item 12): the daemon's
# entries and the locally read ones have the same keys, those thintrim(1)
# lists, so a script works whether thintrimd runs or not.
# shellcheck disable=SC2119 # daemon_start/daemon_stop take no script arguments
set -uo pipefail
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=../dbus/lib.sh
source "$here/../dbus/lib.sh"

loopfs_require_cmd python3
dbus_test_setup thintrim-robust-schema ext4
dbus_data_fs

# keys JSON: the sorted keys of each filesystem, one line per filesystem.
keys() {
	python3 -c '
import json, sys
for fs in json.loads(sys.stdin.read())["filesystems"]:
    print(" ".join(sorted(fs)))'
}

local_keys=$("$THINTRIM" --mountinfo "$TT_MOUNTINFO" list --json 2>/dev/null | keys)
daemon_start --mountinfo "$TT_MOUNTINFO"
daemon_json=$("$THINTRIM" --mountinfo "$TT_MOUNTINFO" list --json 2>/dev/null)
assert_match "through the daemon" '"source": "daemon"' "$daemon_json"
daemon_keys=$(keys <<<"$daemon_json")
status_json=$("$THINTRIM" status --json 2>/dev/null)
status_keys=$(keys <<<"$status_json")
daemon_stop

assert_match "one filesystem listed locally" "mount_point" "$local_keys"
assert_eq "the daemon's entries have the same keys as the local ones" "$local_keys" "$daemon_keys"
assert_eq "status --json lists filesystems with the same keys" "$local_keys" "$status_keys"
# Every Filesystem property with a JSON key is in list's entries, every
# Manager one at status's top level (issue 17: MinimumExtent and
# FreedSpaceThreshold had been left out): the schema generated from the XML.
assert_true "the schema listing is readable (${TT_SCHEMA_LISTING:-unset})" test -r "${TT_SCHEMA_LISTING:-}"
schema_keys() { # INTERFACE: its properties' JSON keys, sorted, one line
	awk -v interface="$1" '$1 == interface && $3 != "-" { print $3 }' "${TT_SCHEMA_LISTING:-/dev/null}" |
		sort | tr '\n' ' '
}
missing_from() { # KEYS-WANTED KEYS-HAD: those of the first not in the second
	comm -23 <(tr ' ' '\n' <<<"$1" | grep . | sort) <(tr ' ' '\n' <<<"$2" | grep . | sort) | tr '\n' ' '
}
assert_match "the schema has Filesystem keys" "last_reached_disk_bytes" "$(schema_keys Filesystem)"
assert_eq "list --json has every Filesystem property's key" "" \
	"$(missing_from "$(schema_keys Filesystem)" "$daemon_keys")"
status_top=$(python3 -c 'import json, sys; print(" ".join(sorted(json.loads(sys.stdin.read()))))' <<<"$status_json")
assert_match "the schema has Manager keys" "minimum_extent" "$(schema_keys Manager)"
assert_eq "status --json has every Manager property's key" "" \
	"$(missing_from "$(schema_keys Manager)" "$status_top")"

# thintrim(1) is in the source tree next to tests/: not finding it is a
# failure, not a reason to leave the check out.
man=$here/../../doc/thintrim.1.scd
assert_true "thintrim(1) source is readable ($man)" test -r "$man"
documented=$(sed -n '/each filesystem has the same keys/,/A value that reading/p' "$man" 2>/dev/null |
	grep -o '\*[a-z_]*\*' | tr -d '*' | grep -v '^$' | sort | tr '\n' ' ')
assert_match "thintrim(1) has the list of keys" "mount_point" "$documented"
assert_eq "thintrim(1) documents exactly these keys" "$(tr ' ' '\n' <<<"$local_keys" | sort | tr '\n' ' ')" "$documented"

loopfs_finish
