// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/system_paths.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace thintrim {

// A block device number as "MAJ:MIN" in sysfs and mountinfo.
struct DeviceNumber {
    unsigned major = 0;
    unsigned minor = 0;

    [[nodiscard]] static DeviceNumber fromDev(dev_t dev);
    // Throws Error(InvalidArgument) unless `text` is "MAJ:MIN".
    [[nodiscard]] static DeviceNumber parse(std::string_view text);
    [[nodiscard]] std::string toString() const;
    [[nodiscard]] dev_t toDev() const;
    // Major 0 is the kernel's anonymous (non-block) device range.
    [[nodiscard]] bool isAnonymous() const { return major == 0; }
    auto operator<=>(const DeviceNumber&) const = default;
};

enum class LayerKind { Disk, Partition, Loop, Md, Crypt, Lvm, Thin, Dm };

// The spec's lower-case names.
inline constexpr auto kLayerKinds =
    makeEnumCodec<LayerKind>("layer kind", {{LayerKind::Disk, "disk"},
                                            {LayerKind::Partition, "partition"},
                                            {LayerKind::Loop, "loop"},
                                            {LayerKind::Md, "md"},
                                            {LayerKind::Crypt, "crypt"},
                                            {LayerKind::Lvm, "lvm"},
                                            {LayerKind::Thin, "thin"},
                                            {LayerKind::Dm, "dm"}});
[[nodiscard]] constexpr std::string_view layerKindName(LayerKind kind) {
    return kLayerKinds.name(kind);
}

// One block device in a filesystem's stack, as sysfs shows it.
struct Layer {
    unsigned depth = 0; // 0 for the filesystem's own device(s)
    std::string name;   // kernel name: "dm-2", "md0", "sda1"
    DeviceNumber device;
    LayerKind kind = LayerKind::Disk;
    // What a person recognises the layer by: dm name ("vgseed-root"), md level
    // ("raid1"), loop backing file, SCSI provisioning mode, "virtio-blk disk"...
    std::string detail;
    std::uint64_t discardMaxBytes = 0;
    std::uint64_t discardMaxHwBytes = 0;
    std::uint64_t discardGranularity = 0;
    std::uint64_t sizeBytes = 0;

    // discard_max_bytes > 0: the layer accepts discards. Granularity alone
    // says nothing (non-zero on non-discarding devices since Linux 6.8).
    [[nodiscard]] bool passesDiscards() const { return discardMaxBytes > 0; }
};

// The verdict on whether discards issued by the filesystem reach the disk.
struct StackVerdict {
    bool eligible = false;
    // Indices into BlockStack::layers of the layers that drop discards: the
    // highest layer reporting 0 whose lower layers all pass, or a leaf
    // reporting 0. Empty when eligible.
    std::vector<std::size_t> culprits;
    // One sentence naming the layer at fault and the fix; for an eligible
    // stack a short confirmation ("discards pass through 5 layers to sda, sdb").
    std::string reason;
};

struct BlockStack {
    // Depth-first from the filesystem's device(s) to the leaves. A device
    // that is reachable twice (a disk under two partitions of one md) appears
    // under each parent, as `lsblk -s` shows it.
    std::vector<Layer> layers;
    StackVerdict verdict;

    // Top-level layers (depth 0): one for most filesystems, one per member for
    // a multi-device btrfs.
    [[nodiscard]] std::vector<const Layer*> tops() const;
};

// Walks `/sys/dev/block/MAJ:MIN` of each top device down through `slaves/`
// (a partition continues to its disk, whose queue/ it reports) and computes
// the verdict. A multi-device filesystem (btrfs) passes all its members; it is
// eligible when at least one member passes discards.
// Throws Error(InvalidArgument) if a top device is not in sysfs.
[[nodiscard]] BlockStack walkBlockStack(const SystemPaths& paths,
                                        const std::vector<DeviceNumber>& topDevices);

// Resolves a device path or kernel name ("/dev/sda1", "/dev/mapper/vg-lv",
// "dm-3", "sda") to its number through sysfs; nullopt when unknown.
[[nodiscard]] std::optional<DeviceNumber> deviceNumberOf(const SystemPaths& paths,
                                                         std::string_view deviceOrName);

// "VG/LV" as lvchange and lvs take it, from an LVM dm name
// ("vg--a-pool-tpool" gives "vg-a/pool"); the dm name when it is not LVM's.
[[nodiscard]] std::string lvmVolumeName(std::string_view dmName);

} // namespace thintrim
