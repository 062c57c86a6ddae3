// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "bus_objects.h"
#include "config/config.h"
#include "discovery/filesystem_catalog.h"
#include "engine/engine.h"
#include "service/schedule_plan.h"

#include <cstdint>
#include <optional>
#include <string>

namespace thintrim::daemon {

// What the daemon publishes, read from the core: the properties of the
// Manager and of each Filesystem object (bus_objects.h), and systemd's
// STATUS= line. Nothing here reads the system: the loop thread publishes
// after every change.

// A duration or time in µs as the bus carries it (never negative).
[[nodiscard]] inline std::uint64_t usec(Microseconds value) {
    return value.count() > 0 ? static_cast<std::uint64_t>(value.count()) : 0;
}

// `entry`'s object, with its history from `state`, the samples of the last
// scan from `catalog` and its next trim from `plan`.
[[nodiscard]] FilesystemProperties filesystemProperties(const CatalogEntry& entry,
                                                        const FilesystemCatalog& catalog,
                                                        const State& state,
                                                        const SchedulePlan& plan);

// The Manager object: the engine now, the configuration in force, the
// schedule as last planned; `pacingState` is what pacing holds back.
[[nodiscard]] ManagerProperties managerProperties(const Engine& engine, const Config& config,
                                                  const SchedulePlan& plan,
                                                  const std::string& pacingState);

// "Trimming /home (40%), job 3", "Suspended", "Idle; next trim in 2 days"...
[[nodiscard]] std::string statusLine(const Engine& engine, std::uint64_t nextScheduledTrim);

} // namespace thintrim::daemon
