// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/system_paths.h"
#include "stack/block_stack.h"

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// Why a mount is not trimmed. The order is the order of the checks: the first
// that applies is reported.
enum class SkipReason {
    NoTrimOption,    // X-fstrim.notrim in fstab
    Pseudo,          // proc, sysfs, cgroup2, tmpfs...
    Network,         // nfs, cifs...: cannot pass discards
    Autofs,          // an automount trigger, not a filesystem
    NotBlockDevice,  // overlay, fuse...: no block device under it
    UnsupportedType, // a block filesystem without FITRIM (iso9660, squashfs...)
    Hidden,          // over-mounted: not reachable by its path
    UserMount,       // mounted by a user (udisks under /media, /run/media), not the system
    Duplicate,       // the same filesystem is listed under another mount point
    ReadOnly,        // every mount of this filesystem is read-only
    Removable,       // on a removable device (decided with the block stack, catalog.h)
    Excluded,        // left out by Include=, Exclude= or Types= in [Filesystems]
};

// Short machine names, used in JSON.
inline constexpr auto kSkipReasons =
    makeEnumCodec<SkipReason>("skip reason", {{SkipReason::NoTrimOption, "notrim"},
                                              {SkipReason::Pseudo, "pseudo"},
                                              {SkipReason::Network, "network"},
                                              {SkipReason::Autofs, "autofs"},
                                              {SkipReason::NotBlockDevice, "not-block-device"},
                                              {SkipReason::UnsupportedType, "unsupported-type"},
                                              {SkipReason::Hidden, "hidden"},
                                              {SkipReason::UserMount, "user-mount"},
                                              {SkipReason::Duplicate, "duplicate"},
                                              {SkipReason::ReadOnly, "read-only"},
                                              {SkipReason::Removable, "removable"},
                                              {SkipReason::Excluded, "excluded"}});
[[nodiscard]] constexpr std::string_view skipReasonName(SkipReason reason) {
    return kSkipReasons.name(reason);
}

// One line of mountinfo with the inventory's decision on it.
struct Mount {
    int mountId = 0;
    int parentId = 0;
    std::string mountPoint; // unescaped
    std::string root;       // the subtree mounted ("/", "/sub", "/@a")
    std::string source;     // "/dev/sda2", "tmpfs", "server:/export"
    std::string fsType;
    std::string vfsOptions; // per-mount: "rw,relatime"
    std::string fsOptions;  // superblock: "rw,errors=remount-ro"
    // From mountinfo: the st_dev a stat() of the mount point returns (an
    // anonymous 0:N for btrfs). The trim engine checks it before FITRIM.
    DeviceNumber mountDevice;
    // The block devices holding the filesystem: mountDevice for most, every
    // member from sys/fs/btrfs/<uuid>/devices for btrfs. Empty if none.
    std::vector<DeviceNumber> blockDevices;
    std::string uuid;  // filesystem UUID (libblkid; sysfs for btrfs), may be empty
    std::string label; // filesystem label, may be empty
    // Over-mounted, or inside an over-mounted mount: its path leads to another
    // filesystem. Set whatever skipReason says (a hidden tmpfs is "pseudo").
    bool hidden = false;
    // Another device mounted now carries the same filesystem UUID (an LVM
    // snapshot of this one, a cloned disk): identity() then adds the source,
    // so that the two keep separate histories. Never set for btrfs, whose
    // subvolumes and member devices share one UUID.
    bool uuidShared = false;

    std::optional<SkipReason> skipReason; // nullopt: managed
    // For a person: "read-only mount", "same filesystem as /mnt/plain", ...
    std::string skipDetail;

    [[nodiscard]] bool isManaged() const { return !skipReason.has_value(); }
    // The stable identity used for history: the UUID, or the source without
    // one; "UUID@source" while the UUID is shared (see uuidShared).
    [[nodiscard]] std::string identity() const {
        if (uuid.empty())
            return source;
        return uuidShared ? uuid + "@" + source : uuid;
    }
};

struct Inventory {
    std::vector<Mount> mounts; // in mountinfo order, managed and skipped

    [[nodiscard]] std::vector<const Mount*> managed() const;
    // The mount with this mount point that is reachable (not hidden), or
    // nullptr. Trailing slashes are ignored.
    [[nodiscard]] const Mount* find(std::string_view mountPoint) const;
};

// Choices of the configuration that change the inventory's decisions.
struct InventoryOptions {
    // [Filesystems] UserMedia=yes: also manage what users mounted (udisks
    // under /media and /run/media) and removable devices.
    bool userMedia = false;
    // [Filesystems] Include=, Exclude=, Types=: whether a mount that would
    // be managed is; unset selects every one.
    std::function<bool(std::string_view mountPoint, std::string_view fsType)> selects;
};

struct FilesystemsConfig;
// What the [Filesystems] section asks of the inventory: one translation for
// thintrimd and for the CLI reading the system itself, so that both skip the
// same mounts.
[[nodiscard]] InventoryOptions inventoryOptions(const FilesystemsConfig& filesystems);

// UUID and label of each block device, kept between reads of the mount table
// so that a device is looked up once while it stays mounted: a daemon that
// re-reads the table on every mount event must not probe every device again.
// An entry is dropped when no mount uses its device any more, and re-read
// when the kernel's disk sequence number (sysfs `diskseq`) changed, as it does
// when a loop device is re-attached.
struct DeviceNameCache {
    struct Names {
        std::string diskseq; // empty where the kernel has none
        std::string uuid;
        std::string label;
    };
    std::map<DeviceNumber, Names> devices;
    // Devices looked up (udev database or superblock) since construction.
    unsigned lookups = 0;
};

// Reads paths.mountinfo with libmount and decides on every mount; fstab from
// paths.fstab (missing is fine). UUIDs and labels come from udev's database
// (devRoot/run/udev/data) where it has them, otherwise from the superblock
// with libblkid under paths.devRoot; `cache` carries them from one read to the
// next. Linear in the number of mounts: each device is looked up once.
// Throws Error(Failed) if the mountinfo cannot be read or parsed.
[[nodiscard]] Inventory readInventory(const SystemPaths& paths,
                                      const InventoryOptions& options = {},
                                      DeviceNameCache* cache = nullptr);

// One fstab line, as libmount parsed it.
struct FstabEntry {
    std::string source; // "UUID=...", "/dev/sdb2", "LABEL=swap"
    std::string target;
    std::string fsType;
    std::string options;
};

// Every entry of the fstab at `path`; empty when there is none. Throws
// Error(Failed) when it exists but cannot be read.
[[nodiscard]] std::vector<FstabEntry> readFstab(const std::filesystem::path& path);

// Whether a comma-separated option string ("rw,discard=async", a crypttab or
// fstab options field) has option `name`, with or without a value.
[[nodiscard]] bool hasMountOption(const std::string& options, const char* name);

// Filesystem types whose kernel driver implements FITRIM.
[[nodiscard]] bool fsTypeSupportsFitrim(std::string_view fsType);

} // namespace thintrim
