// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's gentle policies over its catalog (src/core/service/gentle_policies.h),
// on the captured raid5 stack (md0 over sda1, sdb1, sdc1) made degraded.
#include "catch.h"
#include "fixture_paths.h"
#include "service/gentle_policies.h"
#include "temp_dir.h"

#include <fstream>

using namespace thintrim;

namespace {

struct DegradedRaid {
    test::TempDir dir;
    SystemPaths paths;
    FilesystemCatalog catalog;
    CatalogEntry entry;

    DegradedRaid() {
        paths = test::writableFixturePaths("raid5-safe", dir.path());
        const auto md0 = deviceNumberOf(paths, "md0");
        REQUIRE(md0);
        entry.mount.mountPoint = "/srv";
        entry.mount.fsType = "ext4";
        entry.mount.mountDevice = *md0;
        entry.stack = std::make_shared<BlockStack>(walkBlockStack(paths, {*md0}));
        catalog.replace({entry}, {}, {});
        std::ofstream(paths.sys("block/md0/md") / "degraded") << "1\n";
    }
};

// What the policies say together before the first chunk of `jobId` on `mount`.
std::vector<std::string> deferrals(GentlePolicies& policies, std::uint64_t jobId,
                                   const Mount& mount) {
    ChunkContext context;
    context.jobId = jobId;
    context.mount = &mount;
    context.chunkSize = 1 << 30;
    std::vector<std::string> reasons;
    for (ChunkPolicy* policy : policies.inOrder()) {
        const ChunkDecision decision = policy->beforeChunk(context);
        if (decision.defer)
            reasons.push_back(decision.reason);
    }
    return reasons;
}

} // namespace

TEST_CASE("busy storage holds back the jobs the schedule queued, not those asked for") {
    DegradedRaid raid;
    GentlePolicies policies{raid.catalog, raid.paths};
    Config config;
    config.trim.pacing = PacingMode::Fixed;
    policies.configure(config);

    CHECK(deferrals(policies, 7, raid.entry.mount).empty()); // asked for by hand
    policies.scheduled(7);
    const std::vector<std::string> reasons = deferrals(policies, 7, raid.entry.mount);
    REQUIRE(reasons.size() == 1);
    CHECK(reasons[0] == "deferred: md0 (raid5, 3 devices) is degraded: 1 device missing");
    policies.finished(7);
    CHECK(deferrals(policies, 7, raid.entry.mount).empty());
}

TEST_CASE("a mount the catalog no longer has is not held back by its old stack") {
    DegradedRaid raid;
    GentlePolicies policies{raid.catalog, raid.paths};
    policies.scheduled(1);
    Mount elsewhere = raid.entry.mount;
    elsewhere.mountDevice = {8, 99}; // something else mounted at /srv now
    CHECK(deferrals(policies, 1, elsewhere).empty());
    CHECK(policies.pacingStatus().empty());
}
