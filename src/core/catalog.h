// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "block_stack.h"
#include "inventory.h"

#include <optional>
#include <string>
#include <vector>

namespace thintrim {

// A mount together with the verdict on its block stack: what `thintrim list`
// shows and what the daemon publishes per filesystem.
struct CatalogEntry {
    Mount mount;
    // Walked for every mount on block devices, managed or not, so that
    // `list --all` can show discard limits of skipped mounts too.
    std::optional<BlockStack> stack;
    // Set when the stack could not be walked (device missing from sysfs).
    std::string stackError;

    // Managed and its stack passes discards.
    [[nodiscard]] bool eligible() const;
    // Why not eligible (skip detail, stack verdict or walk error), or the
    // stack's confirmation when eligible.
    [[nodiscard]] std::string reason() const;
    // The top device's limits (the first member for multi-device btrfs).
    [[nodiscard]] std::uint64_t discardMaxBytes() const;
    [[nodiscard]] std::uint64_t discardGranularity() const;
};

// Walks the entry's block stack again: a layer below a mount can change while
// it stays mounted (`cryptsetup refresh --allow-discards`, a reloaded dm table).
void refreshStack(const SystemPaths& paths, CatalogEntry& entry);

[[nodiscard]] std::vector<CatalogEntry> buildCatalog(const SystemPaths& paths,
                                                     const Inventory& inventory);

// The reachable entry for `mountPoint` (trailing slashes ignored), or nullptr.
[[nodiscard]] const CatalogEntry* findEntry(const std::vector<CatalogEntry>& catalog,
                                            std::string_view mountPoint);

} // namespace thintrim
