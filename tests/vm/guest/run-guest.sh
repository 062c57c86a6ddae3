#!/bin/bash
# run-guest.sh -- runs INSIDE the VM guest (started by thintrim-test.service
# via /usr/local/sbin/thintrim-vm-boot), from the 9p share on /trimtest.
#
# Reads /trimtest/run.conf (written by run-vm.sh), installs the thintrim .deb
# if one was given, runs scenarios/<SCENARIO>.sh and reports
# "@@THINTRIM DONE rc=N" on the control port (/dev/ttyS1). The unit then powers
# the guest off. Everything the guest produces goes to /trimtest/out/.
set -uo pipefail

share=/trimtest
ctl=/dev/ttyS1
out=$share/out
mkdir -p "$out"

# shellcheck source=/dev/null
. "$share/run.conf"
: "${SCENARIO:?run.conf has no SCENARIO}"

# Everything from here on goes to the console (ttyS0, via the unit) and to
# out/guest.log.
exec > >(tee -a "$out/guest.log") 2>&1

done_rc() {
    echo "@@THINTRIM DONE rc=$1" >"$ctl"
    echo "run-guest: done, rc=$1"
    sync
    # Let tee drain before the unit powers the guest off.
    sleep 0.5
    exit "$1"
}

echo "run-guest: scenario $SCENARIO on ${RELEASE:-bookworm}, $(uname -r), up $(cut -d' ' -f1 /proc/uptime)s"
echo "@@THINTRIM BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)" >"$ctl"

export THINTRIM_VM_SHARE=$share THINTRIM_VM_OUT=$out THINTRIM_VM_CTL=$ctl
export THINTRIM_VM_ACK_TIMEOUT=${ACK_TIMEOUT:-300}
export THINTRIM_VM_SCENARIO=$SCENARIO
# bookworm or trixie: a scenario may expect what differs between them.
export THINTRIM_VM_RELEASE=${RELEASE:-bookworm}
export THINTRIM_INSTALLED=0

if [ -n "${DEB:-}" ]; then
    echo "run-guest: installing $DEB"
    # The guest has no network: every dependency must already be in the image
    # (see the package list in tests/vm/build-image.sh).
    if ! dpkg -i "$share/deb/$DEB"; then
        echo "run-guest: dpkg -i $DEB failed; missing dependencies must be added to build-image.sh"
        dpkg --audit || true
        done_rc 96
    fi
    dpkg-query -W -f='${Package} ${Version}\n' "$(dpkg-deb -f "$share/deb/$DEB" Package)" \
        >"$out/thintrim-version.txt" || true
    systemctl daemon-reload || true
    export THINTRIM_INSTALLED=1
else
    echo "run-guest: no thintrim .deb given; scenarios skip their thintrim parts"
fi

script=$share/scenarios/$SCENARIO.sh
[ -r "$script" ] || { echo "run-guest: no scenario $script"; done_rc 95; }
rc=0
bash "$script" || rc=$?
echo "run-guest: scenario $SCENARIO exited $rc"
done_rc "$rc"
