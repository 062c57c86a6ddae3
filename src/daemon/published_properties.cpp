// SPDX-License-Identifier: GPL-2.0-or-later
#include "published_properties.h"

#include "bus_names.h"

#include <variant>

#include <fmt/format.h>

namespace thintrim::daemon {

FilesystemProperties filesystemProperties(const CatalogEntry& entry,
                                          const FilesystemCatalog& catalog, const State& state,
                                          const SchedulePlan& plan) {
    const Mount& mount = entry.mount;
    FilesystemProperties p;
    p.mountPoint = mount.mountPoint;
    p.source = mount.source;
    p.deviceNumber = mount.mountDevice.toString();
    p.fsType = mount.fsType;
    p.uuid = mount.uuid;
    p.label = mount.label;
    p.mountOptions = mount.vfsOptions;
    p.eligible = entry.eligible();
    p.reason = entry.reason();
    p.discardMaxBytes = entry.discardMaxBytes();
    p.discardGranularity = entry.discardGranularity();
    if (entry.stack) {
        for (const Layer& layer : entry.stack->layers)
            p.stack.emplace_back(layer.depth, layer.name, std::string(layerKindName(layer.kind)),
                                 layer.discardMaxBytes, layer.discardGranularity,
                                 layer.passesDiscards());
    }
    FilesystemHistory history;
    if (auto found = state.filesystems.find(mount.identity()); found != state.filesystems.end())
        history = found->second;
    p.lastTrimStarted = usec(history.lastTrimStarted);
    p.lastTrimFinished = usec(history.lastTrimFinished);
    p.lastTrimmedBytes = history.lastTrimmedBytes;
    p.lastTrimDuration = usec(history.lastTrimDuration);
    p.lastTrimResult = std::string(history.lastTrimResultName());
    p.lastTrimMessage = history.lastTrimMessage;
    p.totalTrimmedBytes = history.totalTrimmedBytes;
    p.trimCount = history.trimCount;
    p.lastReachedDiskBytes = history.lastReachedDiskBytes.value_or(dbus::kUnknownBytes);
    p.totalReachedDiskBytes = history.totalReachedDiskBytes;
    p.lastVerifyResult = std::string(history.lastVerifyResultName());
    p.lastVerifyTime = usec(history.lastVerifyTime);
    p.lastVerifyMessage = history.lastVerifyMessage;
    // As sampled by the last scan: the loop thread reads no sysfs per publish.
    if (auto async = catalog.asyncDiscard(mount.mountPoint)) {
        p.asyncDiscard = true;
        p.discardBacklogBytes = async->backlogBytes.value_or(0);
    }
    if (auto sample = catalog.freeSpace(mount.mountPoint)) {
        p.size = sample->size;
        p.freeBytes = sample->free;
    }
    p.freedSinceLastTrim = freedSinceLastTrimOf(catalog, entry, history).value_or(0);
    if (auto next = plan.nextTrim.find(mount.mountPoint); next != plan.nextTrim.end())
        p.nextScheduledTrim = usec(next->second);
    return p;
}

ManagerProperties managerProperties(const Engine& engine, const Config& config,
                                    const SchedulePlan& plan, const std::string& pacingState) {
    ManagerProperties p;
    const State& state = engine.state();
    const std::optional<Engine::Current> current = engine.current();
    p.state = engineStateName(engine.engineState());
    if (current) {
        p.currentJob = current->jobId;
        p.currentMountPoint = current->mount.mountPoint;
        p.progress = current->progress.fraction();
        p.currentTrimmedBytes = current->progress.trimmedBytes;
        p.pacingState = pacingState;
    }
    p.queuedJobs = engine.queuedJobIds();
    p.nextScheduledTrim = usec(plan.earliestNextTrim());
    p.lastRunStarted = usec(state.lastRun.started);
    p.lastRunFinished = usec(state.lastRun.finished);
    p.lastRunTrimmedBytes = state.lastRun.trimmedBytes;
    p.lastRunResult = std::string(state.lastRun.resultName());
    p.totalTrimmedBytes = state.totalTrimmedBytes;
    p.lastRunReachedDiskBytes = state.lastRun.reachedDiskBytes;
    p.totalReachedDiskBytes = state.totalReachedDiskBytes;
    p.interval = usec(config.schedule.interval);
    p.rateLimit = config.trim.rateLimit;
    p.chunkSize = config.trim.chunkSize;
    p.minimumExtent = config.trim.minimumExtent;
    if (const auto* bytes = std::get_if<std::uint64_t>(&config.schedule.freedSpaceThreshold))
        p.freedSpaceThreshold = *bytes;
    return p;
}

std::string statusLine(const Engine& engine, std::uint64_t nextScheduledTrim) {
    const std::optional<Engine::Current> current = engine.current();
    if (current)
        return fmt::format("Trimming {} ({:.0f}%), job {}", current->mount.mountPoint,
                           current->progress.fraction() * 100, current->jobId);
    if (engine.state().suspended)
        return "Suspended";
    if (nextScheduledTrim > 0)
        return fmt::format(
            "Idle; next trim {}",
            formatRelative(Microseconds(static_cast<Microseconds::rep>(nextScheduledTrim)),
                           realtimeNow()));
    return "Idle; nothing to trim";
}

} // namespace thintrim::daemon
