// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "image.h"
#include "monitor.h"
#include "qemu_process.h"
#include "vm_config.h"
#include "vm_disk.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace thintrim::host {

// Where the audit reads from; every root injectable for tests.
struct AuditRoots {
    std::filesystem::path pveDir = "/etc/pve";              // qemu-server/*.conf, storage.cfg
    std::filesystem::path libvirtDir = "/etc/libvirt/qemu"; // *.xml
    std::filesystem::path procRoot = "/proc";
    std::optional<int> onlyPid; // --pid: that QEMU process only, no configuration files
    std::string onlyVm;         // a VMID or a libvirt name; empty = all
};

// One VM disk as the host knows it: from its configuration, from its
// running QEMU, or both (the running settings win).
struct AuditedDisk {
    std::string source; // "proxmox", "libvirt" or "qemu" (a process with no configuration here)
    std::string vm;     // "100", a libvirt domain name, or "pid 1234"
    std::string vmName;
    std::string disk;       // "scsi0", "vda", or QEMU's device id
    std::string volume;     // Proxmox's volume id, the value `qm set` takes
    std::string configFile; // where the configuration was read
    StorageInfo storage;
    std::optional<PveDriveLine> pveDrive; // the configuration line, for the fix
    std::optional<DiskSettings> configured;
    std::optional<DiskSettings> pending; // Proxmox [PENDING]
    std::optional<DiskSettings> running;
    std::string runningDriveId; // "drive-scsi0" or a -blockdev node name
    bool runningFromBlockdev = false;
    std::string deviceDriver; // the running QEMU's -device driver ("scsi-hd")
    std::string serial;       // the running device's serial=, empty when not set
    // The running device's option that hides discard from the guest
    // ("discard=off", "discard_granularity=0"); empty when none.
    std::string deviceDiscardOff;
    std::optional<int> pid;
    std::string qmpSocket;
    std::string guestAgentSocket;
    std::string qemuVersion; // from QMP, when it was asked
    std::vector<std::string> vmSnapshots;
    ImageUsage usage;
    std::optional<BlockUnmapStats> unmap; // from QMP
    std::string qmpError;
    std::vector<HostFinding> findings;

    // The settings in effect: the running QEMU's, else the configuration's.
    [[nodiscard]] const DiskSettings& effective() const;
    [[nodiscard]] const std::string& image() const { return effective().image; }
    // QEMU passes the guest's discards to the image: discard=unmap on the
    // drive and nothing on the device that hides discard from the guest.
    [[nodiscard]] bool passesDiscards() const {
        return effective().discard == DiscardMode::Unmap && deviceDiscardOff.empty();
    }
};

struct AuditReport {
    std::vector<AuditedDisk> disks;
    // Files that could not be read or parsed: named, the audit goes on.
    std::vector<std::string> problems;
};

// Reads QEMU's unmap counters of a running process; nullopt with `error`
// set when it cannot (no socket, busy monitor, timeout).
struct QmpSnapshot {
    std::string qemuVersion;
    std::vector<BlockUnmapStats> stats;
};
using QmpReader =
    std::function<std::optional<QmpSnapshot>(const std::string& socket, std::string& error)>;

// The reader a live system uses: connect, query-block, query-blockstats.
[[nodiscard]] QmpReader systemQmpReader(std::chrono::milliseconds timeout);

// Every disk under the roots (configurations and processes), merged, with
// images probed, QMP asked (when `qmp` is set) and findings computed.
[[nodiscard]] AuditReport runAudit(const AuditRoots& roots, const ImageProbe& probe,
                                   const QmpReader& qmp);

// The configured and running disks merged, before probing: the pure part of
// runAudit(), for tests.
[[nodiscard]] std::vector<AuditedDisk>
collectDisks(const std::vector<std::pair<PveVmConfig, std::string>>& pveConfigs,
             const std::vector<PveStorage>& storages,
             const std::vector<std::pair<LibvirtDomain, std::string>>& domains,
             const std::vector<QemuProcess>& processes);

// The findings of one disk (replaces disk.findings).
void computeFindings(AuditedDisk& disk);

// The QMP counters that belong to `disk` among a process's.
[[nodiscard]] std::optional<BlockUnmapStats>
matchUnmapStats(const AuditedDisk& disk, const std::vector<BlockUnmapStats>& stats);

} // namespace thintrim::host
