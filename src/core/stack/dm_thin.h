// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/system_paths.h"
#include "stack/block_stack.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// A thin pool inside the guest frees its own blocks on a discard and, with
// passdown, passes the discard on to its data device. Without passdown the
// guest's pool has the space back but the virtual disk never hears of it,
// and sysfs shows nothing: the thin volume still advertises discards. Only
// the pool's device-mapper table and status tell.

// One target line of a dm table or status, as the DM_TABLE_STATUS ioctl
// returns it (dmsetup table / dmsetup status print the same).
struct DmTarget {
    std::uint64_t startSector = 0;
    std::uint64_t lengthSectors = 0;
    std::string type;   // "thin-pool", "linear", "crypt", ...
    std::string params; // the rest of the line
};

// The table (asStatus = false) or the status line of the dm device `device`,
// through the DM ioctl on `control` (/dev/mapper/control), no dmsetup
// process. Throws Error(Failed) naming the call when it fails.
[[nodiscard]] std::vector<DmTarget> readDmTargets(const std::filesystem::path& control,
                                                  const DeviceNumber& device, bool asStatus);

enum class ThinPoolDiscards {
    Passdown,   // the pool frees its blocks and passes the discard on
    NoPassdown, // the pool frees its blocks; the disk below never hears of it
    Ignore,     // the pool ignores discards altogether
};

// lvchange's --discards words.
inline constexpr auto kThinPoolDiscards = makeEnumCodec<ThinPoolDiscards>(
    "thin-pool discard mode", {{ThinPoolDiscards::Passdown, "passdown"},
                               {ThinPoolDiscards::NoPassdown, "nopassdown"},
                               {ThinPoolDiscards::Ignore, "ignore"}});
[[nodiscard]] constexpr std::string_view thinPoolDiscardsName(ThinPoolDiscards mode) {
    return kThinPoolDiscards.name(mode);
}

// From a thin-pool table's params ("<meta> <data> <block> <low water>
// <#features> <features>..."): what was asked for. nullopt if malformed.
[[nodiscard]] std::optional<ThinPoolDiscards> thinPoolDiscardsFromTable(std::string_view params);
// From a thin-pool status line: what the kernel does (it turns passdown off
// when the data device cannot discard). nullopt for a failed pool or a line
// without the field.
[[nodiscard]] std::optional<ThinPoolDiscards> thinPoolDiscardsFromStatus(std::string_view params);

// A thin pool in a filesystem's stack that keeps discards from the disk.
struct SwallowingThinPool {
    std::string layerName; // "dm-2"
    std::string volume;    // "vgthin/pool", as lvchange takes it
    ThinPoolDiscards asked = ThinPoolDiscards::Passdown;
    ThinPoolDiscards effective = ThinPoolDiscards::Passdown;
    // One sentence naming the pool, and the fix.
    [[nodiscard]] std::string sentence() const;
    [[nodiscard]] std::string fix() const;
};

// The table and status of one dm device; nullopt when they cannot be read
// (no control device in a test, not root).
struct DmTableAndStatus {
    std::vector<DmTarget> table;
    std::vector<DmTarget> status;
};
using DmReader = std::function<std::optional<DmTableAndStatus>(const DeviceNumber&)>;

// The reader a live system uses: DM ioctls on paths.devRoot/dev/mapper/control;
// nullopt for every device when that cannot be opened or a call fails.
[[nodiscard]] DmReader systemDmReader(const SystemPaths& paths);

// Every thin-pool layer of `stack` whose table or status says it does not
// pass discards down, each once.
[[nodiscard]] std::vector<SwallowingThinPool> findSwallowingThinPools(const BlockStack& stack,
                                                                      const DmReader& reader);

} // namespace thintrim
