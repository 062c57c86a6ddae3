// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "vm_disk.h"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace thintrim::host {

// A disk of a running QEMU as its command line sets it up: `-drive` (Proxmox
// up to 8, plain QEMU) or a `-blockdev` graph (libvirt, Proxmox 9) attached
// by a `-device`.
struct QemuDisk {
    std::string name;    // the device id ("scsi0", "virtio-disk2"), else the drive id
    std::string driveId; // "drive-scsi0", or the node-name the device takes
    DiskSettings settings;
    bool fromBlockdev = false; // set up by -blockdev nodes, not -drive
    std::string deviceDriver;  // "scsi-hd", "virtio-blk-pci"; empty for if=virtio and the like
    std::string serial;        // the device's serial=, what the guest sees as the disk's serial
    // The device's own option that hides discard from the guest whatever the
    // drive says ("discard=off" on virtio-blk, "discard_granularity=0");
    // empty when there is none.
    std::string deviceDiscardOff;
};

struct QemuProcess {
    int pid = 0;
    std::string vmid;             // `-id N`, Proxmox's QEMU only
    std::string name;             // `-name NAME` or `-name guest=NAME`
    std::string qmpSocket;        // the control monitor's unix socket, if any
    std::string guestAgentSocket; // the org.qemu.guest_agent.0 channel's socket, if any
    std::vector<QemuDisk> disks;
};

// QEMU's "key=value,key=value" option syntax, ",," standing for a comma. A
// first item without '=' is `impliedKey`'s value (`-device scsi-hd,...`
// gives driver=scsi-hd).
[[nodiscard]] std::vector<std::pair<std::string, std::string>>
parseQemuOptions(std::string_view text, std::string_view impliedKey);

// /proc/PID/cmdline: NUL-separated arguments.
[[nodiscard]] std::vector<std::string> splitCommandLine(std::string_view nulSeparated);

// nullopt when `args` is not a QEMU system emulator's (by argv[0]: qemu-system-*, kvm).
// Throws Error(InvalidArgument) naming the pid for a -blockdev or -device
// JSON that does not parse.
[[nodiscard]] std::optional<QemuProcess> parseQemuCommandLine(int pid,
                                                              const std::vector<std::string>& args);

// Every QEMU process under `procRoot` (/proc), or only `onlyPid`. Processes
// that vanish or cannot be read while scanning are left out.
[[nodiscard]] std::vector<QemuProcess> scanQemuProcesses(const std::filesystem::path& procRoot,
                                                         std::optional<int> onlyPid);

} // namespace thintrim::host
