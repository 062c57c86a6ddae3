// SPDX-License-Identifier: GPL-2.0-or-later
#include "discovery/filesystem_catalog.h"

namespace thintrim {

void FilesystemCatalog::replace(
    std::vector<CatalogEntry> entries, std::map<std::string, FreeSpace, std::less<>> freeSpace,
    std::map<std::string, BtrfsAsyncDiscard, std::less<>> asyncDiscard) {
    entries_ = std::move(entries);
    freeSpace_ = std::move(freeSpace);
    asyncDiscard_ = std::move(asyncDiscard);
    staleFreeSpace_.clear();
    visible_.clear();
    for (std::size_t index = 0; index < entries_.size(); ++index) {
        if (!entries_[index].mount.hidden)
            visible_[entries_[index].mount.mountPoint] = index;
    }
}

bool FilesystemCatalog::isManagedHere(const CatalogEntry& entry) const {
    return entry.mount.isManaged() &&
           selection_.selects(entry.mount.mountPoint, entry.mount.fsType);
}

bool FilesystemCatalog::isTrimmable(const CatalogEntry& entry) const {
    return isManagedHere(entry) && entry.eligible();
}

const CatalogEntry* FilesystemCatalog::find(std::string_view mountPoint) const {
    return findEntry(entries_, mountPoint);
}

const CatalogEntry* FilesystemCatalog::managed(std::string_view mountPoint) const {
    const CatalogEntry* entry = find(mountPoint);
    return entry != nullptr && isManagedHere(*entry) ? entry : nullptr;
}

const CatalogEntry* FilesystemCatalog::visible(std::string_view mountPoint) const {
    auto found = visible_.find(mountPoint);
    return found != visible_.end() ? &entries_[found->second] : nullptr;
}

const CatalogEntry* FilesystemCatalog::entryOf(const Mount& mount) const {
    const CatalogEntry* entry = find(mount.mountPoint);
    return entry != nullptr && entry->mount.mountDevice == mount.mountDevice ? entry : nullptr;
}

std::vector<const CatalogEntry*> FilesystemCatalog::managedEntries() const {
    std::vector<const CatalogEntry*> managed;
    for (const CatalogEntry& entry : entries_) {
        if (isManagedHere(entry))
            managed.push_back(&entry);
    }
    return managed;
}

std::vector<const CatalogEntry*> FilesystemCatalog::trimmableEntries() const {
    std::vector<const CatalogEntry*> trimmable;
    for (const CatalogEntry& entry : entries_) {
        if (isTrimmable(entry))
            trimmable.push_back(&entry);
    }
    return trimmable;
}

std::vector<const Mount*> FilesystemCatalog::mounts() const {
    std::vector<const Mount*> mounts;
    for (const CatalogEntry& entry : entries_)
        mounts.push_back(&entry.mount);
    return mounts;
}

bool FilesystemCatalog::stillMounted(const Mount& mount) const {
    const CatalogEntry* entry = visible(mount.mountPoint);
    return entry != nullptr && entry->mount.mountDevice == mount.mountDevice;
}

std::set<std::string_view> FilesystemCatalog::managedMountPoints() const {
    std::set<std::string_view> present;
    for (const auto& [mountPoint, index] : visible_) {
        if (isManagedHere(entries_[index]))
            present.insert(mountPoint);
    }
    return present;
}

std::optional<FreeSpace> FilesystemCatalog::freeSpace(std::string_view mountPoint) const {
    auto sample = freeSpace_.find(mountPoint);
    return sample != freeSpace_.end() ? std::optional(sample->second) : std::nullopt;
}

std::optional<FreeSpace> FilesystemCatalog::freshFreeSpace(std::string_view mountPoint) const {
    return staleFreeSpace_.contains(mountPoint) ? std::nullopt : freeSpace(mountPoint);
}

void FilesystemCatalog::markFreeSpaceStale(std::string_view mountPoint) {
    staleFreeSpace_.emplace(mountPoint);
}

std::optional<BtrfsAsyncDiscard>
FilesystemCatalog::asyncDiscard(std::string_view mountPoint) const {
    auto found = asyncDiscard_.find(mountPoint);
    return found != asyncDiscard_.end() ? std::optional(found->second) : std::nullopt;
}

std::map<std::string, std::uint64_t, std::less<>> FilesystemCatalog::asyncDiscardBacklogs() const {
    std::map<std::string, std::uint64_t, std::less<>> backlogs;
    for (const CatalogEntry* entry : managedEntries()) {
        if (auto async = asyncDiscard(entry->mount.mountPoint); async && async->backlogBytes)
            backlogs[entry->mount.identity()] = *async->backlogBytes;
    }
    return backlogs;
}

} // namespace thintrim
