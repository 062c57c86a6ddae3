// SPDX-License-Identifier: GPL-2.0-or-later
#include "discovery/catalog.h"

#include "base/error.h"

#include <fstream>

namespace thintrim {

namespace {

// The first layer of the stack that sysfs calls removable, empty if none. A
// partition's disk is a layer of its own, so a partition on a USB stick counts.
std::string removableLayer(const SystemPaths& paths, const BlockStack& stack) {
    for (const Layer& layer : stack.layers) {
        std::ifstream file(paths.sys("dev/block") / layer.device.toString() / "removable");
        char flag = '0';
        if (file >> flag && flag == '1')
            return layer.name;
    }
    return {};
}

StackCache::Walk walk(const SystemPaths& paths, const std::vector<DeviceNumber>& devices) {
    StackCache::Walk result;
    try {
        auto stack = std::make_shared<BlockStack>(walkBlockStack(paths, devices));
        result.removableLayer = removableLayer(paths, *stack);
        result.stack = std::move(stack);
    } catch (const Error& e) {
        result.error = e.what();
    }
    return result;
}

void apply(CatalogEntry& entry, const StackCache::Walk& walked) {
    entry.stack = walked.stack;
    entry.stackError = walked.error;
}

} // namespace

bool CatalogEntry::eligible() const {
    return mount.isManaged() && stack && stack->verdict.eligible;
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

std::vector<CatalogEntry> buildCatalog(const SystemPaths& paths, Inventory inventory,
                                       const InventoryOptions& options, StackCache* cache) {
    StackCache oneBuild;
    StackCache& stacks = cache != nullptr ? *cache : oneBuild;
    std::map<std::vector<DeviceNumber>, StackCache::Walk> current;

    std::vector<CatalogEntry> catalog;
    catalog.reserve(inventory.mounts.size());
    for (Mount& mount : inventory.mounts) {
        CatalogEntry entry{std::move(mount), nullptr, {}};
        const std::vector<DeviceNumber>& devices = entry.mount.blockDevices;
        if (!devices.empty()) {
            auto [found, inserted] = current.try_emplace(devices);
            if (inserted) {
                if (auto known = stacks.walks.find(devices); known != stacks.walks.end()) {
                    found->second = known->second;
                } else {
                    found->second = walk(paths, devices);
                    ++stacks.walked;
                }
            }
            apply(entry, found->second);
            if (!found->second.removableLayer.empty() && !options.userMedia &&
                entry.mount.isManaged()) {
                entry.mount.skipReason = SkipReason::Removable;
                entry.mount.skipDetail = "on a removable device (" + found->second.removableLayer +
                                         "); UserMedia=yes in [Filesystems] lets thintrimd trim it";
            }
        }
        catalog.push_back(std::move(entry));
    }
    stacks.walks = std::move(current);
    return catalog;
}

const CatalogEntry* findEntry(const std::vector<CatalogEntry>& catalog,
                              std::string_view mountPoint) {
    while (mountPoint.size() > 1 && mountPoint.back() == '/')
        mountPoint.remove_suffix(1);
    // The last visible one: were two visible, the later mount is on top.
    const CatalogEntry* found = nullptr;
    for (const CatalogEntry& entry : catalog) {
        if (!entry.mount.hidden && entry.mount.mountPoint == mountPoint)
            found = &entry;
    }
    return found;
}

} // namespace thintrim
