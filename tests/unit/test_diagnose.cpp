// SPDX-License-Identifier: GPL-2.0-or-later
#include "catch.h"
#include "discovery/catalog.h"
#include "engine/diagnose.h"
#include "fixture_paths.h"
#include "temp_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace thintrim;
using thintrim::test::fixturePaths;
using thintrim::test::TempDir;
namespace fs = std::filesystem;

namespace {

void writeFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

// A capture's sysfs and mountinfo (and its /proc/swaps) with the /etc files
// the doctor reads written into a temp dir; a test writes only what it needs.
struct DoctorSystem {
    TempDir etc{"thintrim-doctor"};
    SystemPaths paths;

    explicit DoctorSystem(const std::string& fixture) : paths(fixturePaths(fixture)) {
        paths.swaps = paths.sysfsRoot / "proc/swaps";
        paths.fstab = etc.path() / "fstab";
        paths.crypttab = etc.path() / "crypttab";
        paths.lvmConfig = etc.path() / "lvm/lvm.conf";
        paths.systemdConfig = etc.path() / "systemd/system";
    }

    void enableFstrimTimer() const {
        fs::create_directories(paths.systemdConfig / "timers.target.wants");
        fs::create_symlink("/lib/systemd/system/fstrim.timer",
                           paths.systemdConfig / "timers.target.wants/fstrim.timer");
    }

    [[nodiscard]] std::vector<CatalogEntry> catalog() const {
        return buildCatalog(paths, readInventory(paths));
    }
    [[nodiscard]] std::vector<Finding> diagnose() const { return runDiagnosis(paths, catalog()); }
};

std::vector<Finding> about(const std::vector<Finding>& findings, std::string_view subject) {
    std::vector<Finding> matching;
    std::copy_if(findings.begin(), findings.end(), std::back_inserter(matching),
                 [&](const Finding& finding) { return finding.subject == subject; });
    return matching;
}

// The one finding about `subject`; fails the test unless there is exactly one.
Finding onlyAbout(const std::vector<Finding>& findings, std::string_view subject) {
    std::vector<Finding> matching = about(findings, subject);
    INFO("findings about " << subject);
    REQUIRE(matching.size() == 1);
    return matching.front();
}

using thintrim::test::Contains;

} // namespace

TEST_CASE("doctor on the seed stack: every filesystem passes discards", "[diagnose]") {
    DoctorSystem system("seed-stack");
    std::vector<Finding> findings = system.diagnose();
    for (const char* mountPoint : {"/", "/mnt/root", "/mnt/data", "/mnt/plain"}) {
        Finding finding = onlyAbout(findings, mountPoint);
        CHECK(finding.severity == Severity::Ok);
    }
    CHECK(std::none_of(findings.begin(), findings.end(),
                       [](const Finding& finding) { return finding.severity == Severity::Error; }));
}

TEST_CASE("doctor names dm-crypt without discards and the crypttab fix", "[diagnose]") {
    DoctorSystem system("crypt-nodiscard");
    Finding finding = onlyAbout(system.diagnose(), "/mnt/root");
    CHECK(finding.severity == Severity::Error);
    CHECK_THAT(finding.message, Contains("dm-0") && Contains("crypttab"));
    CHECK_THAT(finding.hint, Contains("thintrim stack /mnt/root"));
}

TEST_CASE("doctor names the virtual disk and the hypervisor setting", "[diagnose]") {
    DoctorSystem system("nodiscard-disk");
    Finding finding = onlyAbout(system.diagnose(), "/mnt/nd-scsi");
    CHECK(finding.severity == Severity::Error);
    CHECK_THAT(finding.message, Contains("discard=on") && Contains("discard='unmap'"));
}

TEST_CASE("doctor: swap on a discard-capable partition", "[diagnose]") {
    DoctorSystem system("seed-stack"); // /dev/sdb2 is an active swap partition

    SECTION("without `discard` in fstab: warning with the fstab line to write") {
        writeFile(system.paths.fstab, "/dev/sdb2 none swap sw 0 0\n");
        Finding finding = onlyAbout(system.diagnose(), "/dev/sdb2");
        CHECK(finding.severity == Severity::Warning);
        CHECK_THAT(finding.hint, Contains("/dev/sdb2 swap sw,discard"));
    }
    SECTION("with `discard=once`: ok") {
        writeFile(system.paths.fstab, "/dev/sdb2 none swap sw,discard=once 0 0\n");
        CHECK(onlyAbout(system.diagnose(), "/dev/sdb2").severity == Severity::Ok);
    }
    SECTION("not in fstab at all: warning pointing at swapon --discard") {
        writeFile(system.paths.fstab, "/dev/sda2 /mnt/plain ext4 defaults 0 2\n");
        Finding finding = onlyAbout(system.diagnose(), "/dev/sdb2");
        CHECK(finding.severity == Severity::Warning);
        CHECK_THAT(finding.hint, Contains("swapon --discard /dev/sdb2"));
    }
}

TEST_CASE("doctor: crypttab entries without `discard`", "[diagnose]") {
    DoctorSystem system("seed-stack");
    const std::string crypttab = system.paths.crypttab.string();

    SECTION("one warning per entry without it, naming the line") {
        writeFile(system.paths.crypttab, "# <target> <source> <key> <options>\n"
                                         "seedcrypt UUID=2bb3afd2 none luks\n"
                                         "fast /dev/sdc1 none luks,discard\n"
                                         "bare /dev/sdd1\n");
        std::vector<Finding> findings = about(system.diagnose(), crypttab);
        REQUIRE(findings.size() == 2);
        CHECK(findings[0].severity == Severity::Warning);
        CHECK_THAT(findings[0].message, Contains("line 2: seedcrypt"));
        CHECK_THAT(findings[0].hint, Contains("luks,discard") && Contains("seedcrypt"));
        CHECK_THAT(findings[1].message, Contains("line 4: bare"));
    }
    SECTION("every entry with it: ok") {
        writeFile(system.paths.crypttab, "seedcrypt UUID=2bb3afd2 none luks,discard\n");
        CHECK(onlyAbout(system.diagnose(), crypttab).severity == Severity::Ok);
    }
    SECTION("no crypttab: nothing to say") {
        CHECK(about(system.diagnose(), crypttab).empty());
    }
}

TEST_CASE("doctor: lvm.conf issue_discards, only where LVM is used", "[diagnose]") {
    DoctorSystem lvm("seed-stack");
    const std::string lvmConf = lvm.paths.lvmConfig.string();

    SECTION("set to 0 (commented lines do not count)") {
        writeFile(lvm.paths.lvmConfig,
                  "devices {\n\t# issue_discards = 1\n\tissue_discards = 0\n}\n");
        Finding finding = onlyAbout(lvm.diagnose(), lvmConf);
        CHECK(finding.severity == Severity::Info);
        CHECK_THAT(finding.message, Contains("lvremove"));
    }
    SECTION("not set: LVM's default 0") {
        CHECK_THAT(onlyAbout(lvm.diagnose(), lvmConf).message, Contains("not set"));
    }
    SECTION("set to 1") {
        writeFile(lvm.paths.lvmConfig, "devices {\n issue_discards=1 # on\n}\n");
        CHECK(onlyAbout(lvm.diagnose(), lvmConf).severity == Severity::Ok);
    }
    SECTION("no LVM on this system") {
        DoctorSystem plain("raid5");
        writeFile(plain.paths.lvmConfig, "devices {\n issue_discards = 0\n}\n");
        CHECK(about(plain.diagnose(), plain.paths.lvmConfig.string()).empty());
    }
}

TEST_CASE("doctor: fstrim.timer enabled next to thintrim", "[diagnose]") {
    DoctorSystem system("seed-stack");
    SECTION("enabled: warning with the command that disables it") {
        system.enableFstrimTimer();
        Finding finding = onlyAbout(system.diagnose(), "fstrim.timer");
        CHECK(finding.severity == Severity::Warning);
        CHECK(finding.hint == "systemctl disable --now fstrim.timer");
    }
    SECTION("enabled but masked: ok") {
        system.enableFstrimTimer();
        fs::create_symlink("/dev/null", system.paths.systemdConfig / "fstrim.timer");
        CHECK(onlyAbout(system.diagnose(), "fstrim.timer").severity == Severity::Ok);
    }
    SECTION("not enabled: ok") {
        CHECK(onlyAbout(system.diagnose(), "fstrim.timer").severity == Severity::Ok);
    }
}

TEST_CASE("doctor: continuous discard is reported, not judged", "[diagnose]") {
    DoctorSystem system("seed-stack");
    std::vector<CatalogEntry> catalog = system.catalog();
    auto data = std::find_if(catalog.begin(), catalog.end(), [](const CatalogEntry& entry) {
        return entry.mount.mountPoint == "/mnt/data";
    });
    REQUIRE(data != catalog.end());
    data->mount.fsOptions = "rw,discard,attr2";
    std::vector<Finding> findings = about(runDiagnosis(system.paths, catalog), "/mnt/data");
    REQUIRE(findings.size() == 2);
    CHECK(findings[0].severity == Severity::Ok); // the stack
    CHECK(findings[1].severity == Severity::Info);
    CHECK_THAT(findings[1].message, Contains("continuous discard"));
}

TEST_CASE("doctor: network filesystems cannot pass discards", "[diagnose]") {
    SystemPaths paths;
    paths.mountinfo = thintrim::test::testData("skipped-types.mountinfo");
    paths.fstab = thintrim::test::testData("absent.fstab");
    paths.sysfsRoot = paths.devRoot = thintrim::test::testData("absent-root");
    paths.swaps = paths.crypttab = paths.lvmConfig = paths.systemdConfig =
        thintrim::test::testData("absent");
    std::vector<Finding> findings = runDiagnosis(paths, buildCatalog(paths, readInventory(paths)));
    CHECK(std::any_of(findings.begin(), findings.end(), [](const Finding& finding) {
        return finding.severity == Severity::Info &&
               finding.message.find("network filesystem") != std::string::npos;
    }));
}

TEST_CASE("severity names round-trip", "[diagnose]") {
    for (Severity severity : {Severity::Ok, Severity::Info, Severity::Warning, Severity::Error})
        CHECK(kSeverities.find(severityName(severity)) == severity);
    CHECK_FALSE(kSeverities.find("fatal").has_value());
}
