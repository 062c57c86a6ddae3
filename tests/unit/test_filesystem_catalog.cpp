// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's catalog (src/core/discovery/filesystem_catalog.h): what is managed here,
// the visible mount at a mount point, and the samples of the last scan.
#include "catch.h"
#include "discovery/filesystem_catalog.h"
#include "synthetic_catalog.h"

using namespace thintrim;
using thintrim::test::EntryShape;
using thintrim::test::syntheticEntry;

namespace {

std::vector<std::string> mountPointsOf(const std::vector<const CatalogEntry*>& entries) {
    std::vector<std::string> mountPoints;
    for (const CatalogEntry* entry : entries)
        mountPoints.push_back(entry->mount.mountPoint);
    return mountPoints;
}

} // namespace

TEST_CASE("managed here: managed by the inventory and selected by [Filesystems]") {
    FilesystemCatalog catalog;
    catalog.replace({syntheticEntry("/a"), syntheticEntry("/proc", {.managed = false}),
                     syntheticEntry("/c", {.fsType = "xfs", .minor = 3}),
                     syntheticEntry("/d", {.eligible = false, .minor = 4})},
                    {}, {});
    CHECK(mountPointsOf(catalog.managedEntries()) == std::vector<std::string>{"/a", "/c", "/d"});
    CHECK(mountPointsOf(catalog.trimmableEntries()) == std::vector<std::string>{"/a", "/c"});

    FilesystemsConfig selection;
    selection.exclude = {"/c"};
    catalog.select(selection);
    CHECK(mountPointsOf(catalog.managedEntries()) == std::vector<std::string>{"/a", "/d"});
    CHECK(mountPointsOf(catalog.trimmableEntries()) == std::vector<std::string>{"/a"});
    CHECK(catalog.find("/c") != nullptr);
    CHECK(catalog.managed("/c") == nullptr);
    CHECK(catalog.managed("/proc") == nullptr);
    REQUIRE(catalog.managed("/a/") != nullptr); // trailing slashes ignored
    CHECK(catalog.managed("/a/")->mount.mountPoint == "/a");
    CHECK(catalog.managedMountPoints() == std::set<std::string_view>{"/a", "/d"});
}

TEST_CASE("the visible mount at a mount point, not the one hidden under it") {
    FilesystemCatalog catalog;
    catalog.replace(
        {syntheticEntry("/m", {.hidden = true, .minor = 1}), syntheticEntry("/m", {.minor = 2})},
        {}, {});
    REQUIRE(catalog.visible("/m") != nullptr);
    CHECK(catalog.visible("/m")->mount.mountDevice == DeviceNumber{8, 2});
    CHECK(catalog.visible("/elsewhere") == nullptr);
    CHECK(catalog.managedMountPoints() == std::set<std::string_view>{"/m"});

    SECTION("a mount is found only while it is still the one mounted there") {
        Mount under;
        under.mountPoint = "/m";
        under.mountDevice = {8, 1};
        CHECK(catalog.entryOf(under) == nullptr);
        Mount top = under;
        top.mountDevice = {8, 2};
        CHECK(catalog.entryOf(top) == catalog.visible("/m"));
    }
}

TEST_CASE("free space after a trim is stale for the schedule until the next scan") {
    FilesystemCatalog catalog;
    catalog.replace({syntheticEntry("/a")}, {{"/a", {100, 40, {}}}}, {});
    CHECK(catalog.freshFreeSpace("/a") == FreeSpace{100, 40, {}});
    catalog.markFreeSpaceStale("/a");
    CHECK_FALSE(catalog.freshFreeSpace("/a"));
    CHECK(catalog.freeSpace("/a") == FreeSpace{100, 40, {}}); // still published
    CHECK_FALSE(catalog.freeSpace("/b"));

    catalog.replace({syntheticEntry("/a")}, {{"/a", {100, 60, {}}}}, {});
    CHECK(catalog.freshFreeSpace("/a") == FreeSpace{100, 60, {}});
}

TEST_CASE("the btrfs discard=async backlog of the last scan") {
    FilesystemCatalog catalog;
    BtrfsAsyncDiscard async;
    async.backlogBytes = 4096;
    catalog.replace({syntheticEntry("/b", {.fsType = "btrfs"})}, {}, {{"/b", async}});
    REQUIRE(catalog.asyncDiscard("/b"));
    CHECK(catalog.asyncDiscard("/b")->backlogBytes == 4096u);
    CHECK_FALSE(catalog.asyncDiscard("/a"));
    catalog.replace({}, {}, {});
    CHECK_FALSE(catalog.asyncDiscard("/b"));
    CHECK(catalog.visible("/b") == nullptr);
}

TEST_CASE("written since the last trim: from the first sample, then from each completed trim") {
    FilesystemCatalog catalog;
    const auto scan = [&](std::uint64_t written) {
        catalog.replace({syntheticEntry("/a")}, {{"/a", {100, 40, written}}}, {});
    };
    scan(5000); // this daemon's first sample: writes before it are not counted
    CHECK(catalog.writtenSinceLastTrim("/a") == 0);
    catalog.updateFreeSpace({{"/a", {100, 40, 5300}}});
    CHECK(catalog.writtenSinceLastTrim("/a") == 300);
    CHECK(catalog.freshFreeSpace("/a") == FreeSpace{100, 40, 5300});

    const Mount mount = catalog.visible("/a")->mount;
    SECTION("a completed trim counts from its start") {
        catalog.trimStarting(mount);
        catalog.updateFreeSpace({{"/a", {100, 40, 5400}}}); // written during the trim
        catalog.trimEnded(mount, true);
        CHECK(catalog.writtenSinceLastTrim("/a") == 100);
    }
    SECTION("a failed or cancelled one does not") {
        catalog.trimStarting(mount);
        catalog.trimEnded(mount, false);
        CHECK(catalog.writtenSinceLastTrim("/a") == 300);
    }
    SECTION("a counter that went backwards restarted: all of it is new") {
        scan(70);
        CHECK(catalog.writtenSinceLastTrim("/a") == 70);
    }
    SECTION("unmounted, then mounted again: counted from its new first sample") {
        catalog.replace({}, {}, {});
        CHECK(catalog.writtenSinceLastTrim("/a") == 0);
        scan(9000);
        CHECK(catalog.writtenSinceLastTrim("/a") == 0);
    }
    SECTION("a sample of a mount point gone since the scan is dropped") {
        catalog.updateFreeSpace({{"/b", {100, 40, 1}}});
        CHECK_FALSE(catalog.freeSpace("/b"));
    }
}

TEST_CASE("a sample is worth taking only where the filesystem's own device wrote") {
    FilesystemCatalog catalog;
    catalog.replace({syntheticEntry("/a", {.leaf = "sda"}), syntheticEntry("/b", {.leaf = "sdb"})},
                    {{"/a", {100, 40, 512 * 10}}, {"/b", {100, 40, 512 * 7}}}, {});
    // Linux 6.1's layout: major minor name, reads (4 fields), writes (4:
    // completed merged sectors ms), ...
    const Diskstats same = parseDiskstats("8 0 sda 1 0 8 1 5 0 10 3 0 4 4\n"
                                          "8 16 sdb 1 0 8 1 5 0 7 3 0 4 4\n");
    CHECK(catalog.writtenSinceSampled(same).empty());
    CHECK(catalog.writtenSinceSampled(parseDiskstats("8 0 sda 1 0 8 1 6 0 11 3 0 4 4\n"
                                                     "8 16 sdb 1 0 8 1 5 0 7 3 0 4 4\n")) ==
          WriteCounters{{"/a", 512 * 11}});
    // Another device's writes (the disk under a partition, another
    // filesystem's) are not this one's.
    CHECK(catalog
              .writtenSinceSampled(parseDiskstats("8 0 sda 1 0 8 1 5 0 10 3 0 4 4\n"
                                                  "8 16 sdb 1 0 8 1 5 0 7 3 0 4 4\n"
                                                  "8 32 sdc 1 0 8 1 9 0 99 3 0 4 4\n"))
              .empty());
}
