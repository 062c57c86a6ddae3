// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace thintrim::host {

// Proxmox VE's vzdump calls its hook script (`vzdump --script PATH`, or
// `script: PATH` in /etc/vzdump.conf) as `PATH PHASE [MODE VMID]`: job-init,
// job-start, job-end, job-abort take no more arguments; backup-start,
// backup-end, backup-abort, log-end, pre-stop, pre-restart, post-restart
// take the backup mode (stop, suspend, snapshot) and the VMID, with VMTYPE
// (qemu, lxc) in the environment.
struct VzdumpHookOptions {
    std::vector<std::string> args; // PHASE [MODE VMID]
    std::string vmType;            // $VMTYPE; empty when vzdump did not set it
    std::string agentSocket;       // --qga; else proxmoxRunDir/VMID.qga
    std::filesystem::path proxmoxRunDir = "/var/run/qemu-server";
    std::chrono::milliseconds requestTimeout{5000};
    std::chrono::milliseconds trimTimeout{300000}; // how long the backup may wait
};

// In phase backup-start of a QEMU VM, asks its guest through the agent to
// trim (thintrim, else fstrim -av) and waits at most trimTimeout, so the
// backup does not copy blocks the guest has freed; other phases do nothing.
// Logs one or two lines to `out` (vzdump puts them in the task log) and
// never fails the backup: every problem (no agent, a timeout, an error in
// the guest, arguments vzdump would not pass) is logged and the result is
// still 0.
int runVzdumpHook(const VzdumpHookOptions& options, std::FILE* out);

} // namespace thintrim::host
