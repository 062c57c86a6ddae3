// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "config/config.h"
#include "engine/engine.h"
#include "state/state.h"

#include <cstdint>
#include <optional>

namespace thintrim {

// What a caller may set for one job (Manager.Trim's options); what it leaves
// out comes from the configuration.
struct JobRequest {
    std::optional<bool> dryRun;
    std::optional<std::uint64_t> minimumExtent;
    std::optional<std::uint64_t> rateLimit;
    std::optional<std::uint64_t> chunkSize;
};

// A job's options: `request` over [Trim] of the configuration. Scheduled jobs
// pass no request.
[[nodiscard]] JobOptions jobOptionsFor(const TrimConfig& trim, const JobRequest& request = {});

// The engine's options from the configuration: BootDelay.
[[nodiscard]] EngineOptions engineOptionsFor(const Config& config);

} // namespace thintrim
