// SPDX-License-Identifier: GPL-2.0-or-later
// Deferral while an md array under a filesystem resyncs, recovers, reshapes
// or is degraded, on the captured raid5 stack (md0 over sda1, sdb1, sdc1)
// with md/sync_action and md/degraded written as the kernel shows them.
#include "catch.h"
#include "fixture_paths.h"
#include "stack/storage_health.h"
#include "temp_dir.h"

#include <fstream>

using namespace thintrim;

namespace {

// A writable copy of the capture (the extracted one is shared by tests).
struct Raid5Copy {
    test::TempDir dir;
    SystemPaths paths;
    BlockStack stack;

    Raid5Copy() {
        paths = test::writableFixturePaths("raid5-safe", dir.path());
        const auto md0 = deviceNumberOf(paths, "md0");
        REQUIRE(md0);
        stack = walkBlockStack(paths, {*md0});
    }

    void set(const std::string& attribute, const std::string& value) const {
        std::ofstream(paths.sys("block/md0/md") / attribute) << value << "\n";
    }
};

} // namespace

TEST_CASE("a healthy array defers nothing") {
    Raid5Copy raid;
    CHECK_FALSE(storageDeferral(raid.paths, raid.stack)); // as captured: no attributes
    raid.set("sync_action", "idle");
    raid.set("degraded", "0");
    CHECK_FALSE(storageDeferral(raid.paths, raid.stack));
    raid.set("sync_action", "frozen");
    CHECK_FALSE(storageDeferral(raid.paths, raid.stack));
}

TEST_CASE("a busy or degraded array defers its filesystems, saying why") {
    Raid5Copy raid;
    raid.set("degraded", "0");
    for (auto [action, words] : std::initializer_list<std::pair<const char*, const char*>>{
             {"resync", "is resyncing"},
             {"recover", "is recovering a device"},
             {"reshape", "is reshaping"},
             {"check", "is checking its redundancy"},
             {"repair", "is repairing"}}) {
        raid.set("sync_action", action);
        auto reason = storageDeferral(raid.paths, raid.stack);
        REQUIRE(reason);
        CHECK(*reason == std::string("md0 (raid5, 3 devices) ") + words);
    }
    raid.set("sync_action", "recover");
    raid.set("degraded", "1");
    CHECK(storageDeferral(raid.paths, raid.stack) ==
          "md0 (raid5, 3 devices) is degraded: 1 device missing");
}

TEST_CASE("pacing watches the leaf disks of a stack") {
    Raid5Copy raid;
    CHECK(leafDevices(raid.stack) == std::vector<std::string>{"sda", "sdb", "sdc"});
}
