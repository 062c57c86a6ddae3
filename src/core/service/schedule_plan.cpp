// SPDX-License-Identifier: GPL-2.0-or-later
#include "service/schedule_plan.h"

#include <algorithm>

namespace thintrim {

SchedulePlan planSchedule(const ScheduleInput& input) {
    SchedulePlan plan;
    if (input.suspended) {
        for (const ScheduledFilesystem& filesystem : input.filesystems)
            plan.nextTrim[filesystem.mountPoint] = Microseconds{0};
        return plan;
    }

    auto wakeNoLaterThan = [&plan](Microseconds at) {
        plan.wakeAt = plan.wakeAt ? std::min(*plan.wakeAt, at) : at;
    };
    const NextDue due =
        nextDue(input.config, input.machineKey, input.filesystems, false, input.now);
    for (const DueFilesystem& filesystem : due.dueNow) {
        if (!input.alreadyQueued.contains(filesystem.mountPoint))
            plan.toQueue.push_back(filesystem);
    }
    for (const ScheduledFilesystem& filesystem : input.filesystems) {
        const DueTime when = dueTime(input.config, input.machineKey, filesystem, input.now);
        const bool dueNow =
            std::any_of(due.dueNow.begin(), due.dueNow.end(), [&](const DueFilesystem& d) {
                return d.mountPoint == filesystem.mountPoint;
            });
        plan.nextTrim[filesystem.mountPoint] = dueNow ? input.now.realtime : when.at;
        // A queued filesystem is looked at again when its trim ends; one due
        // now is being queued by this plan.
        if (!dueNow && !input.alreadyQueued.contains(filesystem.mountPoint))
            wakeNoLaterThan(std::max(when.at, input.now.realtime));
    }
    return plan;
}

Microseconds SchedulePlan::earliestNextTrim() const {
    Microseconds earliest{0};
    for (const auto& [mountPoint, at] : nextTrim) {
        if (at.count() > 0 && (earliest.count() == 0 || at < earliest))
            earliest = at;
    }
    return earliest;
}

std::vector<ScheduledFilesystem> ScheduleInputs::eligible(const FilesystemCatalog& catalog,
                                                          const State& state, Microseconds now) {
    std::vector<ScheduledFilesystem> eligible;
    for (const CatalogEntry* entry : catalog.trimmableEntries()) {
        ScheduledFilesystem filesystem;
        filesystem.mountPoint = entry->mount.mountPoint;
        filesystem.identity = entry->mount.identity();
        filesystem.seenSince = firstSeen_.try_emplace(filesystem.mountPoint, now).first->second;
        if (auto history = state.filesystems.find(filesystem.identity);
            history != state.filesystems.end())
            filesystem.history = history->second;
        if (std::optional<FreeSpace> sample = catalog.freshFreeSpace(filesystem.mountPoint)) {
            filesystem.sizeBytes = sample->size;
            filesystem.freeBytes = sample->free;
            filesystem.writtenSinceLastTrim = catalog.writtenSinceLastTrim(filesystem.mountPoint);
        }
        eligible.push_back(std::move(filesystem));
    }
    return eligible;
}

SchedulePlan ScheduleInputs::plan(const ScheduleConfig& config, sd_id128_t machineKey,
                                  const FilesystemCatalog& catalog, const Engine& engine,
                                  ClockReading now) {
    const std::vector<ScheduledFilesystem> filesystems =
        eligible(catalog, engine.state(), now.realtime);
    std::set<std::string> queued;
    for (std::string& mountPoint : engine.pendingMountPoints())
        queued.insert(std::move(mountPoint));
    return planSchedule({config, machineKey, filesystems, engine.state().suspended, queued, now});
}

std::map<std::string, std::uint64_t, std::less<>>
freedSinceLastTrimByIdentity(const FilesystemCatalog& catalog, const State& state) {
    std::map<std::string, std::uint64_t, std::less<>> freed;
    for (const CatalogEntry* entry : catalog.managedEntries()) {
        const auto history = state.filesystems.find(entry->mount.identity());
        if (history == state.filesystems.end())
            continue;
        if (std::optional<std::uint64_t> bytes =
                freedSinceLastTrimOf(catalog, *entry, history->second))
            freed[entry->mount.identity()] = *bytes;
    }
    return freed;
}

std::optional<std::uint64_t> freedSinceLastTrimOf(const FilesystemCatalog& catalog,
                                                  const CatalogEntry& entry,
                                                  const FilesystemHistory& history) {
    const std::optional<FreeSpace> sample = catalog.freeSpace(entry.mount.mountPoint);
    if (!sample || !history.freeBytesAtLastTrim)
        return std::nullopt;
    return freedSinceLastTrim(history, sample->free,
                              catalog.writtenSinceLastTrim(entry.mount.mountPoint));
}

} // namespace thintrim
