// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "discovery/inventory.h"
#include "stack/block_stack.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace thintrim {

// A mount together with the verdict on its block stack: what `thintrim list`
// shows and what the daemon publishes per filesystem.
struct CatalogEntry {
    Mount mount;
    // Walked for every mount on block devices, managed or not, so that
    // `list --all` can show discard limits of skipped mounts too. Shared by
    // the mounts of the same devices (bind mounts, btrfs subvolumes).
    std::shared_ptr<const BlockStack> stack;
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

// Block stacks by their top devices, kept between builds of the catalog (as
// DeviceNameCache keeps names): a daemon rebuilding it on a mount event walks
// only the devices that were not mounted before. Holds the devices mounted
// at the last build, nothing more.
struct StackCache {
    struct Walk {
        std::shared_ptr<const BlockStack> stack;
        std::string error;
        std::string removableLayer; // the removable device in the stack, if any
    };
    std::map<std::vector<DeviceNumber>, Walk> walks;
    // Stacks walked since construction.
    unsigned walked = 0;
};

// One entry per mount of `inventory`, each distinct set of devices walked
// once (or taken from `cache`). A managed mount on a removable device (sysfs
// `removable` on any layer: a USB stick, an SD card, through dm-crypt too) is
// skipped unless options.userMedia.
[[nodiscard]] std::vector<CatalogEntry> buildCatalog(const SystemPaths& paths, Inventory inventory,
                                                     const InventoryOptions& options = {},
                                                     StackCache* cache = nullptr);

// The entry a lookup of `mountPoint` reaches (trailing slashes ignored): the
// visible mount there, the one on top (the filesystem mounted on an
// automount point, not the autofs trigger under it), or nullptr.
[[nodiscard]] const CatalogEntry* findEntry(const std::vector<CatalogEntry>& catalog,
                                            std::string_view mountPoint);

} // namespace thintrim
