// SPDX-License-Identifier: GPL-2.0-or-later
// The receipt of each run, from its start to its end (src/core/service/receipt_tracker.h).
#include "catch.h"
#include "service/receipt_tracker.h"
#include "synthetic_catalog.h"
#include "temp_dir.h"

#include <filesystem>
#include <fstream>

using namespace thintrim;
using thintrim::test::syntheticEntry;
using thintrim::test::TempDir;

namespace {

// /sys/class/block/sda/stat with `sectors` discarded sectors.
void writeDiscarded(const std::filesystem::path& root, std::uint64_t sectors) {
    std::filesystem::create_directories(root / "sys/class/block/sda");
    std::ofstream(root / "sys/class/block/sda/stat")
        << "100 0 800 5 200 0 1600 9 0 10 14 3 0 " << sectors << " 3 7 1\n";
}

FilesystemReport reportOf(const CatalogEntry& entry) {
    FilesystemReport report;
    report.mountPoint = entry.mount.mountPoint;
    report.mount = entry.mount;
    report.recorded = true;
    report.trim.outcome = TrimOutcome::Success;
    return report;
}

// A sysfs root whose disk sda has discarded 1000 sectors, a filesystem on
// sda, and a tracker reading that root.
struct OneDisk {
    TempDir root{"thintrim-receipt-tracker"};
    SystemPaths paths = pathsUnder(root.path());
    const CatalogEntry entry = syntheticEntry("/a");
    ReceiptTracker receipts{paths};

    static SystemPaths pathsUnder(const std::filesystem::path& sysfsRoot) {
        writeDiscarded(sysfsRoot, 1000);
        SystemPaths paths;
        paths.sysfsRoot = sysfsRoot;
        return paths;
    }
};

} // namespace

TEST_CASE_METHOD(OneDisk,
                 "a run's receipt is what the leaves discarded between its start and its end") {

    receipts.starting(entry.stack.get());
    writeDiscarded(root.path(), 3048);
    FilesystemReport report = reportOf(entry);
    CHECK(receipts.finished(report));
    CHECK(report.trim.reachedDiskBytes == 2048u * 512);

    SECTION("one receipt per run: a second end without a start measures nothing") {
        FilesystemReport again = reportOf(entry);
        CHECK_FALSE(receipts.finished(again));
        CHECK_FALSE(again.trim.reachedDiskBytes);
    }
}

TEST_CASE_METHOD(OneDisk,
                 "no receipt without a stack, for an unresolved mount, or over a dry run's") {

    SECTION("no stack known") {
        receipts.starting(nullptr);
        FilesystemReport report = reportOf(entry);
        CHECK_FALSE(receipts.finished(report));
        CHECK_FALSE(report.trim.reachedDiskBytes);
    }
    SECTION("the mount could not be resolved") {
        receipts.starting(entry.stack.get());
        FilesystemReport report = reportOf(entry);
        report.mount.reset();
        CHECK_FALSE(receipts.finished(report));
        CHECK_FALSE(report.trim.reachedDiskBytes);
    }
    SECTION("a dry run's 0 stays") {
        receipts.starting(entry.stack.get());
        writeDiscarded(root.path(), 5000);
        FilesystemReport report = reportOf(entry);
        report.trim.reachedDiskBytes = 0;
        CHECK_FALSE(receipts.finished(report));
        CHECK(report.trim.reachedDiskBytes == 0u);
    }
}
