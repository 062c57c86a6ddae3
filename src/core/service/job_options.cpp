// SPDX-License-Identifier: GPL-2.0-or-later
#include "service/job_options.h"

namespace thintrim {

JobOptions jobOptionsFor(const TrimConfig& trim, const JobRequest& request) {
    JobOptions options;
    options.dryRun = request.dryRun.value_or(false);
    options.minimumExtent = request.minimumExtent.value_or(trim.minimumExtent);
    options.rateLimit = request.rateLimit.value_or(trim.rateLimit);
    options.chunkSize = request.chunkSize.value_or(trim.chunkSize);
    return options;
}

EngineOptions engineOptionsFor(const Config& config) {
    EngineOptions options;
    options.bootDelay = config.schedule.bootDelay;
    return options;
}

} // namespace thintrim
