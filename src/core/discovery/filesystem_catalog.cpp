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
    // Baselines of filesystems no longer mounted go: mounted again, they
    // count from their first sample.
    std::set<std::string, std::less<>> identities;
    for (const CatalogEntry& entry : entries_)
        identities.insert(entry.mount.identity());
    std::erase_if(writtenAtLastTrim_,
                  [&](const auto& baseline) { return !identities.contains(baseline.first); });
    for (const auto& [mountPoint, sample] : freeSpace_)
        noteWritten(mountPoint, sample);
}

void FilesystemCatalog::updateFreeSpace(std::map<std::string, FreeSpace, std::less<>> samples) {
    for (auto& [mountPoint, sample] : samples) {
        if (visible(mountPoint) == nullptr)
            continue; // unmounted since the scan the sampler worked from
        noteWritten(mountPoint, sample);
        staleFreeSpace_.erase(mountPoint);
        freeSpace_[mountPoint] = sample;
    }
}

WriteCounters FilesystemCatalog::writtenSinceSampled(const Diskstats& diskstats) const {
    WriteCounters written;
    for (const auto& [mountPoint, sample] : freeSpace_) {
        const CatalogEntry* entry = visible(mountPoint);
        if (entry == nullptr || !entry->stack || !isManagedHere(*entry))
            continue;
        const std::optional<std::uint64_t> now = bytesWrittenTo(*entry->stack, diskstats);
        if (now && now != sample.written)
            written.emplace(mountPoint, *now);
    }
    return written;
}

void FilesystemCatalog::noteWritten(const std::string& mountPoint, const FreeSpace& sample) {
    const CatalogEntry* entry = visible(mountPoint);
    if (entry == nullptr || !sample.written)
        return;
    auto [baseline, first] =
        writtenAtLastTrim_.try_emplace(entry->mount.identity(), *sample.written);
    // A counter below its baseline restarted (the device was re-created):
    // everything it counts came after.
    if (!first && *sample.written < baseline->second)
        baseline->second = 0;
}

std::uint64_t FilesystemCatalog::writtenSinceLastTrim(std::string_view mountPoint) const {
    const CatalogEntry* entry = visible(mountPoint);
    const auto sample = freeSpace_.find(mountPoint);
    if (entry == nullptr || sample == freeSpace_.end() || !sample->second.written)
        return 0;
    const auto baseline = writtenAtLastTrim_.find(entry->mount.identity());
    if (baseline == writtenAtLastTrim_.end() || *sample->second.written < baseline->second)
        return 0;
    return *sample->second.written - baseline->second;
}

void FilesystemCatalog::trimStarting(const Mount& mount) {
    const auto sample = freeSpace_.find(mount.mountPoint);
    if (sample != freeSpace_.end() && sample->second.written && entryOf(mount) != nullptr)
        writtenAtTrimStart_[mount.identity()] = *sample->second.written;
}

void FilesystemCatalog::trimEnded(const Mount& mount, bool completed) {
    const auto start = writtenAtTrimStart_.find(mount.identity());
    if (start == writtenAtTrimStart_.end())
        return;
    if (completed)
        writtenAtLastTrim_[mount.identity()] = start->second;
    writtenAtTrimStart_.erase(start);
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
