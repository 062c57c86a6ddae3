// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "stack/block_stack.h"

#include <optional>
#include <string>

namespace thintrim {

// Whether the storage under a filesystem is busy repairing itself or running
// without redundancy, so that a trim should wait: an md array in the stack
// that is resyncing, recovering, reshaping, checking or repairing
// (md/sync_action) or degraded (md/degraded > 0). A trim then competes with
// the rebuild for the same disks, and on a degraded array every discard also
// lands on fewer disks carrying all the load.
//
// Returns the reason to defer ("md0 (raid1) is degraded: 1 device missing"),
// or nullopt when nothing in the stack objects. Attributes that cannot be
// read (not an md layer, an older kernel) object to nothing.
[[nodiscard]] std::optional<std::string> storageDeferral(const SystemPaths& paths,
                                                         const BlockStack& stack);

// The leaf devices of a stack (layers with nothing below them), without
// duplicates: the disks whose latency pacing watches.
[[nodiscard]] std::vector<std::string> leafDevices(const BlockStack& stack);

} // namespace thintrim
