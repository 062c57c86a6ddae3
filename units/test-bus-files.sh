#!/bin/bash
# test-bus-files.sh -- the D-Bus activation file, the bus policy and the polkit
# action say what the API contract says, and the programs that read them
# accept them:
#   - both XML files are well-formed, name the right bus name and action;
#   - a private dbus-daemon, configured like the system bus and including our
#     policy, starts (it rejects a policy it cannot parse);
#   - the activation file hands over to thintrimd.service as root;
#   - with the built thintrimd, as root: the daemon owns its name on that bus,
#     and an unprivileged user can read properties, introspect, list objects
#     and run Diagnose, but not set a property or Suspend. The daemon gets an
#     empty mount table, so it manages nothing and trims nothing.
# Environment (set by meson): UNITS_SRCDIR, THINTRIMD_UNIT, THINTRIM_CONF (the
# shipped configuration, which the daemon must accept), THINTRIMD.
set -uo pipefail

src=${UNITS_SRCDIR:?}
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

conf=$src/org.thintrim.ThinTrim1.conf
policy=$src/org.thintrim.ThinTrim1.policy
service=$src/org.thintrim.ThinTrim1.service

python3 - "$conf" "$policy" <<'PY' || failures=$((failures + 1))
import sys
import xml.etree.ElementTree as ET

conf, policy = sys.argv[1], sys.argv[2]
bus = "org.thintrim.ThinTrim1"
problems = []

root = ET.parse(conf).getroot()
owners = [(p.attrib, a.attrib) for p in root.iter("policy") for a in p.iter("allow") if "own" in a.attrib]
if owners != [({"user": "root"}, {"own": bus})]:
    problems.append(f"{conf}: only root may own {bus}, found {owners}")
for p in root.iter("policy"):
    for rule in p:
        if rule.get("send_interface") and rule.get("send_destination") != bus:
            problems.append(f"{conf}: a send rule without send_destination={bus}: {rule.attrib}")
interfaces = {r.get("send_interface") for r in root.iter("allow") if r.get("send_destination") == bus}
for wanted in ("org.thintrim.ThinTrim1.Manager", "org.thintrim.ThinTrim1.Filesystem",
               "org.freedesktop.DBus.ObjectManager", "org.freedesktop.DBus.Introspectable",
               "org.freedesktop.DBus.Properties"):
    if wanted not in interfaces:
        problems.append(f"{conf}: every user must be able to call {wanted}")

actions = ET.parse(policy).getroot().findall("action")
ids = [a.get("id") for a in actions]
if ids != ["org.thintrim.ThinTrim1.manage"]:
    problems.append(f"{policy}: expected the one action org.thintrim.ThinTrim1.manage, found {ids}")
for action in actions:
    for key in ("allow_any", "allow_inactive", "allow_active"):
        value = action.findtext(f"defaults/{key}")
        if value != "auth_admin_keep":
            problems.append(f"{policy}: {key} is {value!r}, expected auth_admin_keep")
    if not action.findtext("description") or not action.findtext("message"):
        problems.append(f"{policy}: the action needs a description and a message")

for problem in problems:
    print("FAIL:", problem, file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# The activation file: systemd starts the unit; Exec= is a dead end.
for line in '[D-BUS Service]' 'Name=org.thintrim.ThinTrim1' 'User=root' \
        'SystemdService=thintrimd.service' 'Exec=/bin/false'; do
    grep -qxF -- "$line" "$service" || fail "$service lacks: $line"
done
if [ -n "${THINTRIMD_UNIT:-}" ]; then
    grep -qx 'BusName=org.thintrim.ThinTrim1' "$THINTRIMD_UNIT" ||
        fail "thintrimd.service does not claim BusName=org.thintrim.ThinTrim1"
fi

# live_check WORKDIR ADDRESS: thintrimd on the bus at ADDRESS, under our policy.
live_check() {
    local work=$1 address=$2
    if [ ! -x "${THINTRIMD:-}" ]; then
        echo "thintrimd not built: the policy is not tried with the daemon"
        return
    fi
    if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! command -v busctl >/dev/null; then
        echo "not root, or no setpriv/busctl: the policy is not tried with the daemon"
        return
    fi
    chmod 0755 "$work"
    chmod 0666 "${address#unix:path=}" 2>/dev/null
    address=${address%%,*}
    # No filesystem: nothing managed, nothing trimmed.
    printf '21 1 0:21 / /proc rw,relatime - proc proc rw\n' >"$work/mountinfo"
    mkdir "$work/state"
    DBUS_SYSTEM_BUS_ADDRESS=$address "$THINTRIMD" --mountinfo "$work/mountinfo" \
        --state-dir "$work/state" --config "${THINTRIM_CONF:?}" \
        >"$work/daemon.log" 2>&1 &
    local daemon=$!
    local bus=(busctl --address="$address")
    local nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups busctl --address="$address")
    local path=/org/thintrim/ThinTrim1 manager=org.thintrim.ThinTrim1.Manager
    local state=''
    for _ in $(seq 100); do
        state=$("${bus[@]}" get-property org.thintrim.ThinTrim1 $path $manager State 2>/dev/null) && break
        kill -0 "$daemon" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$state" ]; then
        fail "thintrimd did not come up on a bus with our policy: $(cat "$work/daemon.log")"
    else
        "${nobody[@]}" get-property org.thintrim.ThinTrim1 $path $manager State >/dev/null ||
            fail "an unprivileged user cannot read the State property"
        "${nobody[@]}" introspect org.thintrim.ThinTrim1 $path >/dev/null ||
            fail "an unprivileged user cannot introspect"
        "${nobody[@]}" call org.thintrim.ThinTrim1 $path org.freedesktop.DBus.ObjectManager \
            GetManagedObjects >/dev/null || fail "an unprivileged user cannot GetManagedObjects"
        "${nobody[@]}" call org.thintrim.ThinTrim1 $path $manager Diagnose >/dev/null ||
            fail "an unprivileged user cannot Diagnose"
        "${nobody[@]}" call org.thintrim.ThinTrim1 $path org.freedesktop.DBus.Properties Set \
            ssv $manager State s idle 2>/dev/null && fail "an unprivileged user could call Properties.Set"
        "${nobody[@]}" call org.thintrim.ThinTrim1 $path $manager Suspend 2>/dev/null &&
            fail "an unprivileged user could Suspend"
        echo "thintrimd on a bus with our policy: reads open, changes refused"
    fi
    kill "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
}

# dbus-daemon parses the policy the way the system bus will.
if command -v dbus-daemon >/dev/null; then
    work=$(mktemp -d)
    cat >"$work/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <include>$conf</include>
</busconfig>
EOF
    dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile --nosyslog \
        --print-address=1 >"$work/address" 2>"$work/errors" &
    pid=$!
    for _ in $(seq 50); do
        [ -s "$work/address" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -s "$work/address" ]; then
        echo "dbus-daemon accepts the policy"
        # Only what concerns the policy: a root-less sandbox may also see
        # "Failed to set fd limit" and the like.
        grep -i 'org.thintrim\|unknown\|invalid\|ignor' "$work/errors" &&
            fail "dbus-daemon warns about the policy"
    else
        fail "dbus-daemon does not start with the policy: $(cat "$work/errors")"
    fi
    if [ -s "$work/address" ]; then
        live_check "$work" "$(head -1 "$work/address")"
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rm -rf "$work"
else
    echo "dbus-daemon not installed: policy not loaded (XML checks only)"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "D-Bus and polkit files: all checks passed"
