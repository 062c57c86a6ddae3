// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"
#include "discovery/catalog.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace thintrim::test {

// What a synthetic catalog entry is like; the defaults make a managed ext4
// filesystem on sda whose stack passes discards.
struct EntryShape {
    std::string fsType = "ext4";
    bool managed = true;  // false: skipped by the inventory (Pseudo)
    bool eligible = true; // its stack passes discards
    bool hidden = false;  // over-mounted
    unsigned minor = 1;   // mount device 8:minor
    std::string leaf = "sda";
};

// A catalog entry at `mountPoint` without reading sysfs.
inline CatalogEntry syntheticEntry(const std::string& mountPoint, const EntryShape& shape = {}) {
    CatalogEntry entry;
    entry.mount.mountPoint = mountPoint;
    entry.mount.source = "/dev/" + shape.leaf + std::to_string(shape.minor);
    entry.mount.fsType = shape.fsType;
    entry.mount.uuid = "uuid" + mountPoint;
    entry.mount.mountDevice = {8, shape.minor};
    entry.mount.hidden = shape.hidden;
    if (!shape.managed) {
        entry.mount.skipReason = SkipReason::Pseudo;
        entry.mount.skipDetail = "pseudo filesystem";
    }
    auto stack = std::make_shared<BlockStack>();
    Layer layer;
    layer.name = shape.leaf;
    layer.discardMaxBytes = shape.eligible ? 4096 : 0;
    stack->layers.push_back(layer);
    stack->verdict.eligible = shape.eligible;
    stack->verdict.reason = shape.eligible ? "discards pass through" : "sda drops discards";
    entry.stack = std::move(stack);
    return entry;
}

// The code of the Error `call` throws; nullopt when it throws none.
inline std::optional<ErrorCode> errorCodeOf(const std::function<void()>& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.code();
    }
    return std::nullopt;
}

} // namespace thintrim::test
