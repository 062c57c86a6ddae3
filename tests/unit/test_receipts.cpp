// SPDX-License-Identifier: GPL-2.0-or-later
#include "catch.h"
#include "discovery/btrfs_discard.h"
#include "discovery/catalog.h"
#include "engine/diagnose.h"
#include "fixture_paths.h"
#include "stack/dm_thin.h"
#include "state/state.h"
#include "temp_dir.h"
#include "trim/receipts.h"
#include "trim/verify.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace thintrim;
using thintrim::test::fixturePaths;
using thintrim::test::TempDir;
using thintrim::test::testData;
namespace fs = std::filesystem;

namespace {

std::string readWhole(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

void writeFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

const CatalogEntry& entryFor(const std::vector<CatalogEntry>& catalog, std::string_view mount) {
    const CatalogEntry* entry = findEntry(catalog, mount);
    REQUIRE(entry != nullptr);
    REQUIRE(entry->stack);
    return *entry;
}

std::string statLine(std::uint64_t discardIos, std::uint64_t discardSectors) {
    return "100 0 800 5 200 0 1600 9 0 10 14 " + std::to_string(discardIos) + " 0 " +
           std::to_string(discardSectors) + " 3 7 1\n";
}

} // namespace

TEST_CASE("the discard fields of a captured /sys/block/X/stat line") {
    // vda of a 6.18 kernel: 17 fields, discards in the 12th and 14th.
    auto counters = parseDiscardCounters(readWhole(testData("diskstats/vda-6.18.stat")));
    REQUIRE(counters);
    CHECK(counters->ios == 11272);
    CHECK(counters->sectors == 6241352);
}

TEST_CASE("a stat line without discard fields (before Linux 4.18) gives nothing") {
    CHECK_FALSE(
        parseDiscardCounters("35862 6868 2267786 9419 33304 15092 2775424 13595 0 9604 25438"));
    CHECK_FALSE(parseDiscardCounters("1 2 3 4 5 6 7 8 9 10 11 x 13 14 15"));
    CHECK_FALSE(parseDiscardCounters(""));
}

TEST_CASE("leaf devices of captured stacks, each disk once") {
    SECTION("thin LV on a pool on one disk") {
        auto catalog =
            buildCatalog(fixturePaths("lvm-thin"), readInventory(fixturePaths("lvm-thin")));
        CHECK(leafDeviceNames(*entryFor(catalog, "/mnt/thin1").stack) ==
              std::vector<std::string>{"sda"});
    }
    SECTION("md raid1 under LUKS and LVM: both mirror disks") {
        auto catalog =
            buildCatalog(fixturePaths("seed-stack"), readInventory(fixturePaths("seed-stack")));
        CHECK(leafDeviceNames(*entryFor(catalog, "/mnt/root").stack) ==
              std::vector<std::string>{"sda", "sdb"});
    }
    SECTION("btrfs raid1 over two disks") {
        auto catalog =
            buildCatalog(fixturePaths("btrfs-multi"), readInventory(fixturePaths("btrfs-multi")));
        CHECK(leafDeviceNames(*entryFor(catalog, "/mnt/top").stack) ==
              std::vector<std::string>{"sda", "sdb"});
    }
}

TEST_CASE("receipts: the discarded bytes between two snapshots, mirrors once per disk") {
    TempDir root{"thintrim-receipts"};
    SystemPaths paths;
    paths.sysfsRoot = root.path();
    writeFile(root.path() / "sys/class/block/sda/stat", statLine(10, 1000));
    writeFile(root.path() / "sys/class/block/sdb/stat", statLine(4, 50));
    const DiscardSnapshot before = readDiscardSnapshot(paths, {"sda", "sdb", "sdz", "../x"});
    CHECK(before.size() == 2);
    writeFile(root.path() / "sys/class/block/sda/stat", statLine(12, 3048));
    writeFile(root.path() / "sys/class/block/sdb/stat", statLine(6, 2098));
    const DiscardSnapshot after = readDiscardSnapshot(paths, {"sda", "sdb"});
    CHECK(discardedBytesBetween(before, after) == 2 * 2048 * 512);

    SECTION("a counter that went backwards (device re-created) counts 0") {
        DiscardSnapshot reset = after;
        reset["sda"].sectors = 5;
        CHECK(discardedBytesBetween(after, reset) == 0);
    }
}

TEST_CASE("FITRIM bytes with nothing at the disks is named as swallowed") {
    CHECK(discardsSwallowed(1 << 30, std::uint64_t{0}));
    CHECK_FALSE(discardsSwallowed(1 << 30, std::uint64_t{4096}));
    CHECK_FALSE(discardsSwallowed(0, std::uint64_t{0}));
    CHECK_FALSE(discardsSwallowed(1 << 30, std::nullopt)); // not measured: no claim
    CHECK_THAT(swallowedSentence(1 << 30), thintrim::test::Contains("1.0 GiB") &&
                                               thintrim::test::Contains("swallowed") &&
                                               thintrim::test::Contains("thintrim doctor"));
}

// Lines as `dmsetup table` / `dmsetup status` print them for an LVM thin pool
// (the ioctl returns the part after the target type as params).
TEST_CASE("thin-pool tables and status lines: passdown or not") {
    CHECK(thinPoolDiscardsFromTable("252:0 252:1 128 0 1 skip_block_zeroing") ==
          ThinPoolDiscards::Passdown);
    CHECK(thinPoolDiscardsFromTable("252:0 252:1 128 0 2 skip_block_zeroing no_discard_passdown") ==
          ThinPoolDiscards::NoPassdown);
    CHECK(thinPoolDiscardsFromTable("252:0 252:1 128 0 1 ignore_discard") ==
          ThinPoolDiscards::Ignore);
    CHECK(thinPoolDiscardsFromTable("252:0 252:1 128 0 0") == ThinPoolDiscards::Passdown);
    CHECK_FALSE(thinPoolDiscardsFromTable("252:0 252:1 128 0 5 skip_block_zeroing"));
    CHECK_FALSE(thinPoolDiscardsFromTable("252:0"));

    CHECK(thinPoolDiscardsFromStatus("1 172/4608 2/32768 - rw discard_passdown "
                                     "queue_if_no_space - 1024") == ThinPoolDiscards::Passdown);
    CHECK(thinPoolDiscardsFromStatus("1 172/4608 2/32768 - rw no_discard_passdown "
                                     "queue_if_no_space - 1024") == ThinPoolDiscards::NoPassdown);
    CHECK(thinPoolDiscardsFromStatus("0 10/4608 0/32768 - rw ignore_discard queue_if_no_space - "
                                     "1024") == ThinPoolDiscards::Ignore);
    CHECK_FALSE(thinPoolDiscardsFromStatus("Fail"));
}

TEST_CASE("a thin pool without passdown in a captured stack is named with its fix") {
    auto catalog = buildCatalog(fixturePaths("lvm-thin"), readInventory(fixturePaths("lvm-thin")));
    const BlockStack& stack = *entryFor(catalog, "/mnt/thin1").stack;
    // The pool (vgthin-pool-tpool) answers as a thin-pool target, the thin
    // volume as "thin": only the pool is judged.
    auto reader = [&](std::string_view poolStatus) {
        return [&stack, poolStatus = std::string(poolStatus)](
                   const DeviceNumber& device) -> std::optional<DmTableAndStatus> {
            for (const Layer& layer : stack.layers) {
                if (layer.device != device)
                    continue;
                if (!layer.detail.ends_with("-tpool"))
                    return DmTableAndStatus{{{0, 2097152, "thin", "252:2 1"}},
                                            {{0, 2097152, "thin", "10240 2097151"}}};
                return DmTableAndStatus{{{0, 4194304, "thin-pool",
                                          "252:0 252:1 128 0 2 skip_block_zeroing "
                                          "no_discard_passdown"}},
                                        {{0, 4194304, "thin-pool", poolStatus}}};
            }
            return std::nullopt;
        };
    };
    auto pools = findSwallowingThinPools(
        stack, reader("1 172/4608 2/32768 - rw no_discard_passdown queue_if_no_space - 1024"));
    REQUIRE(pools.size() == 1);
    CHECK(pools[0].volume == "vgthin/pool");
    CHECK(pools[0].fix() == "lvchange --discards passdown vgthin/pool");
    CHECK_THAT(pools[0].sentence(), thintrim::test::Contains("vgthin/pool") &&
                                        thintrim::test::Contains("does not pass discards down"));

    SECTION("no control device (a test, not root): nothing claimed") {
        CHECK(findSwallowingThinPools(stack, [](const DeviceNumber&) {
                  return std::optional<DmTableAndStatus>{};
              }).empty());
    }
}

TEST_CASE("btrfs with discard=async: detected, its backlog read from sysfs") {
    TempDir root{"thintrim-btrfs"};
    SystemPaths paths;
    paths.sysfsRoot = root.path();
    Mount mount;
    mount.fsType = "btrfs";
    mount.uuid = "0a1b2c3d-0000-4000-8000-000000000001";
    mount.fsOptions = "rw,ssd,discard=async,space_cache=v2,subvolid=5,subvol=/";
    writeFile(root.path() / "sys/fs/btrfs" / mount.uuid / "discard/discardable_bytes", "7340032\n");
    auto async = btrfsAsyncDiscard(paths, mount);
    REQUIRE(async);
    CHECK(async->backlogBytes == 7340032);
    CHECK_THAT(btrfsAsyncSentence(*async), thintrim::test::Contains("7.0 MiB waiting") &&
                                               thintrim::test::Contains("safety net"));

    mount.fsOptions = "rw,ssd,space_cache=v2,subvolid=5,subvol=/";
    CHECK_FALSE(btrfsAsyncDiscard(paths, mount));
    mount.fsOptions = "rw,discard=sync";
    CHECK_FALSE(btrfsAsyncDiscard(paths, mount));
    mount.fsType = "ext4";
    mount.fsOptions = "rw,discard=async";
    CHECK_FALSE(btrfsAsyncDiscard(paths, mount));
}

TEST_CASE("verify verdicts from what the device shows after the discard") {
    VerifyReport report;
    ProbeReadback readback;
    readback.checkedBytes = 8 << 20;
    readback.trimmedBytes = 8 << 20;

    SECTION("pattern everywhere after a discard that reached the disk: dropped by the host") {
        readback.unchangedBytes = 8 << 20;
        readback.reachedDiskBytes = 8 << 20;
        judgeReadback(readback, report);
        CHECK(report.verdict == VerifyVerdict::Dropped);
        CHECK_THAT(report.message, thintrim::test::Contains("discard=unmap") &&
                                       thintrim::test::Contains("Proxmox") &&
                                       thintrim::test::Contains("discard='unmap'"));
    }
    SECTION("pattern gone: passes") {
        readback.unchangedBytes = 128 << 10; // partial clusters at the ends
        readback.reachedDiskBytes = 8 << 20;
        judgeReadback(readback, report);
        CHECK(report.verdict == VerifyVerdict::Passes);
    }
    SECTION("gone, but nothing reached the disks: swallowed inside the guest") {
        readback.unchangedBytes = 0;
        readback.reachedDiskBytes = 0;
        judgeReadback(readback, report);
        CHECK(report.verdict == VerifyVerdict::Dropped);
        CHECK_THAT(report.message, thintrim::test::Contains("inside the guest"));
    }
    SECTION("the filesystem discarded nothing: inconclusive") {
        readback.unchangedBytes = 8 << 20;
        readback.trimmedBytes = 0;
        judgeReadback(readback, report);
        CHECK(report.verdict == VerifyVerdict::Inconclusive);
    }
    SECTION("a little changed: inconclusive") {
        readback.unchangedBytes = 7 << 20;
        judgeReadback(readback, report);
        CHECK(report.verdict == VerifyVerdict::Inconclusive);
    }
}

TEST_CASE("verify refuses what it cannot probe, with the reason") {
    Mount mount;
    mount.mountPoint = "/mnt/b";
    mount.fsType = "btrfs";
    auto none = [](const DeviceNumber&) { return std::optional<DmTableAndStatus>{}; };
    VerifyReport report = verifyFilesystem(SystemPaths{}, mount, nullptr, none);
    CHECK(report.verdict == VerifyVerdict::Inconclusive);
    CHECK_THAT(report.message, thintrim::test::Contains("logical address space"));
    mount.fsType = "vfat";
    report = verifyFilesystem(SystemPaths{}, mount, nullptr, none);
    CHECK(report.verdict == VerifyVerdict::Inconclusive);
    CHECK_THAT(report.message, thintrim::test::Contains("not vfat"));
    CHECK(verifyVerdictName(VerifyVerdict::Dropped) == "dropped");
    CHECK(kVerifyVerdicts.find("passes") == VerifyVerdict::Passes);
    CHECK_FALSE(kVerifyVerdicts.find("never"));
}

TEST_CASE("doctor: swallowed discards and the verify verdict on record") {
    auto catalog = buildCatalog(fixturePaths("lvm-thin"), readInventory(fixturePaths("lvm-thin")));
    const CatalogEntry& thin1 = entryFor(catalog, "/mnt/thin1");
    auto about = [](const std::vector<Finding>& findings, std::string_view subject) {
        std::vector<Finding> matching;
        for (const Finding& finding : findings) {
            if (finding.subject == subject)
                matching.push_back(finding);
        }
        return matching;
    };

    SECTION("no history at hand: one suggestion to run verify") {
        auto findings = proofFindings(catalog, nullptr);
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::Info);
        CHECK(findings[0].hint == "thintrim verify");
    }
    SECTION("FITRIM bytes, nothing at the disks, verify dropped") {
        State state;
        TrimReport report;
        report.outcome = TrimOutcome::Success;
        report.trimmedBytes = 900 << 20;
        report.reachedDiskBytes = 0;
        state.recordTrim(thin1.mount.identity(), "/mnt/thin1", Microseconds{1}, report);
        VerifyReport verify;
        verify.verdict = VerifyVerdict::Dropped;
        verify.message = "the hypervisor drops discards";
        state.recordVerify(thin1.mount.identity(), "/mnt/thin1", realtimeNow(), verify);
        auto findings = about(proofFindings(catalog, &state), "/mnt/thin1");
        REQUIRE(findings.size() == 2);
        CHECK(findings[0].severity == Severity::Warning);
        CHECK_THAT(findings[0].message,
                   thintrim::test::Contains("no discard reached the virtual disks"));
        CHECK(findings[1].severity == Severity::Error);
        CHECK_THAT(findings[1].message, thintrim::test::Contains("the hypervisor drops discards"));
        // Never verified elsewhere: suggested per filesystem.
        auto thick = about(proofFindings(catalog, &state), "/mnt/thick");
        REQUIRE(thick.size() == 1);
        CHECK(thick[0].hint == "thintrim verify /mnt/thick");
    }
}
