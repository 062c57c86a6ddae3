// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "discovery/filesystem_catalog.h"
#include "engine/engine.h"
#include "state/schedule.h"
#include "state/state.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace thintrim {

// What the daemon does with the schedule (src/core/state/schedule.h) at one
// instant: which filesystems to queue, when to wake up next, and what to
// publish as NextScheduledTrim. Pure, so tests drive it with a fake clock.
struct SchedulePlan {
    // Due now and not already queued or running: one scheduled job.
    std::vector<DueFilesystem> toQueue;
    // The timer's next deadline (realtime): the earliest due time of a
    // filesystem not already queued. nullopt: nothing to wake up for. (Free
    // space is sampled on a timer of its own, every CheckInterval.)
    std::optional<Microseconds> wakeAt;
    // NextScheduledTrim per mount point (realtime, 0 = not scheduled); a
    // filesystem due now reports now.
    std::map<std::string, Microseconds> nextTrim;

    // The earliest of nextTrim (Manager.NextScheduledTrim); 0: none.
    [[nodiscard]] Microseconds earliestNextTrim() const;
};

struct ScheduleInput {
    const ScheduleConfig& config;
    sd_id128_t machineKey;
    const std::vector<ScheduledFilesystem>& filesystems; // eligible ones only
    bool suspended = false;
    // Mount points in a queued or running job: never queued twice, and their
    // (past) due time does not make the timer spin.
    const std::set<std::string>& alreadyQueued;
    ClockReading now;
};

[[nodiscard]] SchedulePlan planSchedule(const ScheduleInput& input);

// The schedule's view of the daemon's filesystems: each trimmable one of the
// catalog with its history, its free space (unless a trim made the sample
// stale) and when this daemon first saw it.
class ScheduleInputs {
public:
    // `now` is realtime: a filesystem seen for the first time is seen now,
    // and its first trim is its first slot after this (schedule.h: seenSince).
    [[nodiscard]] std::vector<ScheduledFilesystem> eligible(const FilesystemCatalog& catalog,
                                                            const State& state, Microseconds now);

    // planSchedule() over eligible() and the jobs `engine` has queued or
    // running.
    [[nodiscard]] SchedulePlan plan(const ScheduleConfig& config, sd_id128_t machineKey,
                                    const FilesystemCatalog& catalog, const Engine& engine,
                                    ClockReading now);

private:
    std::map<std::string, Microseconds, std::less<>> firstSeen_;
};

// freedSinceLastTrim() of every managed filesystem with a last trim to count
// from and a free-space sample, by identity (Mount::identity()): the stranded
// space the metrics file shows. A filesystem never trimmed is left out
// (unknown, not 0).
[[nodiscard]] std::map<std::string, std::uint64_t, std::less<>>
freedSinceLastTrimByIdentity(const FilesystemCatalog& catalog, const State& state);

// freedSinceLastTrim() of `entry` from the catalog's last sample and write
// counter; nullopt without a sample or a completed trim to count from.
[[nodiscard]] std::optional<std::uint64_t> freedSinceLastTrimOf(const FilesystemCatalog& catalog,
                                                                const CatalogEntry& entry,
                                                                const FilesystemHistory& history);

} // namespace thintrim
