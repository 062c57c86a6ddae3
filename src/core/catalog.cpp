// SPDX-License-Identifier: GPL-2.0-or-later
#include "catalog.h"

#include "error.h"

namespace thintrim {

bool CatalogEntry::eligible() const {
    return mount.isManaged() && stack.has_value() && stack->verdict.eligible;
}

std::string CatalogEntry::reason() const {
    if (!mount.isManaged())
        return mount.skipDetail;
    if (!stackError.empty())
        return stackError;
    if (!stack)
        return "no block device under this filesystem";
    return stack->verdict.reason;
}

std::uint64_t CatalogEntry::discardMaxBytes() const {
    if (!stack || stack->layers.empty())
        return 0;
    return stack->layers.front().discardMaxBytes;
}

std::uint64_t CatalogEntry::discardGranularity() const {
    if (!stack || stack->layers.empty())
        return 0;
    return stack->layers.front().discardGranularity;
}

void refreshStack(const SystemPaths& paths, CatalogEntry& entry) {
    entry.stack.reset();
    entry.stackError.clear();
    if (entry.mount.blockDevices.empty())
        return;
    try {
        entry.stack = walkBlockStack(paths, entry.mount.blockDevices);
    } catch (const Error& e) {
        entry.stackError = e.what();
    }
}

std::vector<CatalogEntry> buildCatalog(const SystemPaths& paths, const Inventory& inventory) {
    std::vector<CatalogEntry> catalog;
    catalog.reserve(inventory.mounts.size());
    for (const Mount& mount : inventory.mounts) {
        CatalogEntry entry{mount, std::nullopt, {}};
        refreshStack(paths, entry);
        catalog.push_back(std::move(entry));
    }
    return catalog;
}

const CatalogEntry* findEntry(const std::vector<CatalogEntry>& catalog,
                              std::string_view mountPoint) {
    while (mountPoint.size() > 1 && mountPoint.back() == '/')
        mountPoint.remove_suffix(1);
    for (const CatalogEntry& entry : catalog) {
        if (entry.mount.mountPoint == mountPoint && entry.mount.skipReason != SkipReason::Hidden)
            return &entry;
    }
    return nullptr;
}

} // namespace thintrim
