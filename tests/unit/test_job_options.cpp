// SPDX-License-Identifier: GPL-2.0-or-later
// A job's options: the caller's over [Trim] (src/core/service/job_options.h).
#include "catch.h"
#include "service/job_options.h"

using namespace thintrim;

namespace {

TrimConfig trimConfig() {
    TrimConfig trim;
    trim.minimumExtent = 1 << 20;
    trim.rateLimit = 100 << 20;
    trim.chunkSize = 2ULL << 30;
    return trim;
}

} // namespace

TEST_CASE("a scheduled job takes [Trim] as it is, and is no dry run") {
    const JobOptions options = jobOptionsFor(trimConfig());
    CHECK_FALSE(options.dryRun);
    CHECK(options.minimumExtent == 1u << 20);
    CHECK(options.rateLimit == 100u << 20);
    CHECK(options.chunkSize == 2ULL << 30);
}

TEST_CASE("what a caller sets wins over [Trim], field by field") {
    JobRequest request;
    request.dryRun = true;
    request.rateLimit = 0; // unlimited, asked for explicitly
    const JobOptions options = jobOptionsFor(trimConfig(), request);
    CHECK(options.dryRun);
    CHECK(options.rateLimit == 0u);
    CHECK(options.minimumExtent == 1u << 20);
    CHECK(options.chunkSize == 2ULL << 30);

    request.minimumExtent = 4096;
    request.chunkSize = 0;
    const JobOptions all = jobOptionsFor(trimConfig(), request);
    CHECK(all.minimumExtent == 4096u);
    CHECK(all.chunkSize == 0u);
}
