// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "discovery/inventory.h"

#include <cstdint>
#include <optional>
#include <string>

namespace thintrim {

// btrfs mounted with discard=async (the default since Linux 6.2 when the
// disk can discard) discards freed extents itself, in the background, a
// little later. Periodic trims are then a safety net for what it leaves.
struct BtrfsAsyncDiscard {
    // /sys/fs/btrfs/UUID/discard/discardable_bytes: freed bytes it has not
    // discarded yet; nullopt when the kernel does not show it.
    std::optional<std::uint64_t> backlogBytes;
};

// For a btrfs mount whose superblock options include discard=async; nullopt
// for every other mount.
[[nodiscard]] std::optional<BtrfsAsyncDiscard> btrfsAsyncDiscard(const SystemPaths& paths,
                                                                 const Mount& mount);

// "discard=async: btrfs discards freed space itself (N waiting); periodic
// trims are a safety net"
[[nodiscard]] std::string btrfsAsyncSentence(const BtrfsAsyncDiscard& async);

} // namespace thintrim
