// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "config/config.h"
#include "discovery/btrfs_discard.h"
#include "discovery/catalog.h"
#include "stack/diskstats.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// Write counters (FreeSpace::written) by mount point.
using WriteCounters = std::map<std::string, std::uint64_t, std::less<>>;

// Free space of a mounted filesystem (statvfs), and what was written to it.
struct FreeSpace {
    std::uint64_t size = 0;
    std::uint64_t free = 0;
    // Bytes written to the filesystem's own device(s) since they appeared
    // (diskstats of the stack's top layers); nullopt when not readable.
    std::optional<std::uint64_t> written;
    bool operator==(const FreeSpace&) const = default;
};

// The daemon's view of the mounts: the catalog of the last scan, the visible
// mount at each mount point, which of them [Filesystems] selects, and the
// samples the scan took (free space, btrfs discard=async backlogs). The one
// place that says whether a filesystem is managed here and can be trimmed.
class FilesystemCatalog {
public:
    // Takes a scan's reading; every free-space sample is fresh again.
    void replace(std::vector<CatalogEntry> entries,
                 std::map<std::string, FreeSpace, std::less<>> freeSpace,
                 std::map<std::string, BtrfsAsyncDiscard, std::less<>> asyncDiscard);
    // [Filesystems] of the configuration in force. The scan already leaves
    // out what it excludes; asking again covers the time between a reload and
    // the scan it requests, so that a newly excluded filesystem goes at once.
    void select(FilesystemsConfig selection) { selection_ = std::move(selection); }

    [[nodiscard]] const std::vector<CatalogEntry>& entries() const { return entries_; }

    // Managed by the inventory and selected by [Filesystems].
    [[nodiscard]] bool isManagedHere(const CatalogEntry& entry) const;
    // Managed here and its stack passes discards: what a trim may touch.
    [[nodiscard]] bool isTrimmable(const CatalogEntry& entry) const;

    // The entry a lookup of `mountPoint` reaches (findEntry()), or nullptr.
    [[nodiscard]] const CatalogEntry* find(std::string_view mountPoint) const;
    // find(), when it is managed here; nullptr otherwise.
    [[nodiscard]] const CatalogEntry* managed(std::string_view mountPoint) const;
    // The visible mount at exactly `mountPoint` (as the catalog spells it).
    [[nodiscard]] const CatalogEntry* visible(std::string_view mountPoint) const;
    // The entry of `mount` itself: found at its mount point and still on the
    // same device; nullptr once something else is mounted there.
    [[nodiscard]] const CatalogEntry* entryOf(const Mount& mount) const;

    // Every entry managed here, in catalog order.
    [[nodiscard]] std::vector<const CatalogEntry*> managedEntries() const;
    // Every trimmable entry, in catalog order.
    [[nodiscard]] std::vector<const CatalogEntry*> trimmableEntries() const;
    // Every mount of the catalog, hidden ones too (State::observeMounts).
    [[nodiscard]] std::vector<const Mount*> mounts() const;
    // Whether `mount` is still the visible mount at its mount point (on the
    // same device); false once it went or something else is mounted there.
    [[nodiscard]] bool stillMounted(const Mount& mount) const;
    // The visible mount points managed here: one bus object each.
    [[nodiscard]] std::set<std::string_view> managedMountPoints() const;

    // The last sample of `mountPoint`'s free space, or nullopt.
    [[nodiscard]] std::optional<FreeSpace> freeSpace(std::string_view mountPoint) const;
    // freeSpace(), unless it was taken before a trim of that filesystem that
    // ended since (markFreeSpaceStale()): the schedule must not judge freed
    // space by a sample older than the trim.
    [[nodiscard]] std::optional<FreeSpace> freshFreeSpace(std::string_view mountPoint) const;
    void markFreeSpaceStale(std::string_view mountPoint);
    // Samples taken between scans (MountScanner's Scope::Samples), of the
    // filesystems whose devices wrote something: they replace those mount
    // points' samples and are fresh.
    void updateFreeSpace(std::map<std::string, FreeSpace, std::less<>> samples);
    // The managed filesystems whose devices wrote since their last sample,
    // by `diskstats`, with their counters now: only those are worth a
    // sample.
    [[nodiscard]] WriteCounters writtenSinceSampled(const Diskstats& diskstats) const;

    // Bytes written to `mountPoint`'s filesystem since its last completed
    // trim started, or since this daemon first sampled it: written and freed
    // again, this is space free-space growth does not show (schedule.h,
    // freedSinceLastTrim). 0 when unknown.
    [[nodiscard]] std::uint64_t writtenSinceLastTrim(std::string_view mountPoint) const;
    // A trim of `mount` starts: its last sample's write counter becomes the
    // baseline if the trim completes (trimEnded()). The writes since that
    // sample count again after the trim: the estimate errs towards trimming.
    void trimStarting(const Mount& mount);
    void trimEnded(const Mount& mount, bool completed);
    // The btrfs discard=async state of `mountPoint`, nullopt when it has none.
    [[nodiscard]] std::optional<BtrfsAsyncDiscard> asyncDiscard(std::string_view mountPoint) const;
    // The discard=async backlogs of the managed filesystems that show one,
    // by identity (Mount::identity()).
    [[nodiscard]] std::map<std::string, std::uint64_t, std::less<>> asyncDiscardBacklogs() const;

private:
    std::vector<CatalogEntry> entries_;
    // Index into entries_ of the visible mount at each mount point.
    std::map<std::string, std::size_t, std::less<>> visible_;
    FilesystemsConfig selection_;
    std::map<std::string, FreeSpace, std::less<>> freeSpace_;
    std::map<std::string, BtrfsAsyncDiscard, std::less<>> asyncDiscard_;
    std::set<std::string, std::less<>> staleFreeSpace_;
    // Write counters by identity (Mount::identity()): at the start of the
    // last completed trim, or at the first sample; kept across scans.
    std::map<std::string, std::uint64_t, std::less<>> writtenAtLastTrim_;
    std::map<std::string, std::uint64_t, std::less<>> writtenAtTrimStart_;

    void noteWritten(const std::string& mountPoint, const FreeSpace& sample);
};

} // namespace thintrim
