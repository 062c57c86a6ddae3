// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim::host {

// What QEMU does with a guest's discard: passes it to the image (unmap) or
// drops it (ignore, QEMU's default when nothing is set).
enum class DiscardMode { Ignore, Unmap };

inline constexpr auto kDiscardModes = makeEnumCodec<DiscardMode>(
    "discard mode", {{DiscardMode::Ignore, "ignore"}, {DiscardMode::Unmap, "unmap"}});
[[nodiscard]] constexpr std::string_view discardModeName(DiscardMode mode) {
    return kDiscardModes.name(mode);
}
// "on"/"unmap" and "off"/"ignore", as Proxmox, libvirt and QEMU spell them;
// nullopt for anything else.
[[nodiscard]] std::optional<DiscardMode> parseDiscardMode(std::string_view text);

// One disk's settings as a configuration file or a QEMU command line gives them.
struct DiskSettings {
    std::string image;  // a path, or "rbd:pool/image" for what is not a file
    std::string format; // "qcow2", "raw", "" when unknown
    std::string bus;    // "scsi", "virtio", "sata", "ide", "usb", ...
    // The SCSI controller's model ("virtio-scsi-pci", "lsi"); empty for
    // other buses or when not known.
    std::string controller;
    DiscardMode discard = DiscardMode::Ignore;
    std::string detectZeroes; // "off", "on", "unmap"; empty when not set

    bool operator==(const DiskSettings&) const = default;
};

enum class FindingSeverity { Info, Warning, Error };
inline constexpr auto kFindingSeverities =
    makeEnumCodec<FindingSeverity>("finding severity", {{FindingSeverity::Info, "info"},
                                                        {FindingSeverity::Warning, "warning"},
                                                        {FindingSeverity::Error, "error"}});
[[nodiscard]] constexpr std::string_view findingSeverityName(FindingSeverity severity) {
    return kFindingSeverities.name(severity);
}

// Something that keeps the guest's discards from freeing space, and the fix.
struct HostFinding {
    FindingSeverity severity = FindingSeverity::Warning;
    std::string message;
    std::string fix; // the exact command or change; empty when there is none
};

// Where a configured disk's bytes are: what `storage.cfg` says of it.
struct StorageInfo {
    std::string id;   // "local-lvm"
    std::string type; // "dir", "lvmthin", "zfspool", "lvm", "rbd", ...
    // For lvmthin: "VG/POOL" as lvchange takes it.
    std::string thinPool;
};

} // namespace thintrim::host
