// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "vm_disk.h"
#include "xml.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim::host {

// --- Proxmox VE ---------------------------------------------------------------

// One section of /etc/pve/storage.cfg ("TYPE: ID" then indented "key value").
struct PveStorage {
    std::string type;
    std::string id;
    std::map<std::string, std::string> properties; // "path", "vgname", "thinpool", "pool"
};

// Throws Error(InvalidConfig) naming `origin` and the line for a property
// outside a section.
[[nodiscard]] std::vector<PveStorage> parsePveStorageConfig(std::string_view text,
                                                            std::string_view origin);

// A volume ("local-lvm:vm-100-disk-0", "local:100/vm-100-disk-0.qcow2" or an
// absolute path) resolved to what QEMU opens.
struct ResolvedVolume {
    std::string path; // "" when the storage is not one that is read here
    std::string format;
    StorageInfo storage;
};
[[nodiscard]] ResolvedVolume resolvePveVolume(const std::vector<PveStorage>& storages,
                                              std::string_view volume);

// One disk line of a VM's configuration: "scsi0: local-lvm:vm-100-disk-0,discard=on,size=32G".
struct PveDriveLine {
    std::string key;                                          // "scsi0"
    std::string volume;                                       // "local-lvm:vm-100-disk-0"
    std::vector<std::pair<std::string, std::string>> options; // in order, "size" included
    [[nodiscard]] std::optional<std::string> option(std::string_view name) const;
    // The line's value with `name` set to `value` (added when missing): what
    // `qm set VMID --KEY` takes.
    [[nodiscard]] std::string withOption(std::string_view name, std::string_view value) const;
};
// nullopt for what is not a disk (a CD-ROM, "none").
[[nodiscard]] std::optional<PveDriveLine> parsePveDriveLine(std::string_view key,
                                                            std::string_view value);

struct PveVmConfig {
    std::string vmid;
    std::string name;
    std::string scsihw; // "virtio-scsi-single"; Proxmox's default is "lsi" when absent
    std::vector<PveDriveLine> drives;
    // [PENDING]: changes made while the VM ran that the next start applies.
    std::map<std::string, std::string> pending;
    std::vector<std::string> snapshots; // names of [snapshot] sections
};

// A qemu-server configuration (VMID.conf). Only the current section's
// scsiN/virtioN/sataN/ideN lines are disks; [snapshot] sections are named.
[[nodiscard]] PveVmConfig parsePveVmConfig(std::string_view text, std::string_view vmid);

// The SCSI controller QEMU gets for a Proxmox scsihw value.
[[nodiscard]] std::string pveScsiControllerModel(std::string_view scsihw);

// --- libvirt --------------------------------------------------------------------

struct LibvirtDisk {
    std::string target;     // "vda", "sda"
    std::string sourceKind; // "file", "block", "network", "volume"
    DiskSettings settings;
    bool discardSet = false; // the <driver> names discard= at all
};

struct LibvirtDomain {
    std::string name;
    std::string uuid;
    std::vector<LibvirtDisk> disks;
};

// A persistent domain definition (/etc/libvirt/qemu/NAME.xml). CD-ROMs and
// floppies are left out.
[[nodiscard]] LibvirtDomain parseLibvirtDomain(const XmlElement& domain);

} // namespace thintrim::host
