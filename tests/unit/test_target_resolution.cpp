// SPDX-License-Identifier: GPL-2.0-or-later
// Which filesystems a caller's mount points mean (src/core/service/target_resolution.h).
#include "catch.h"
#include "service/target_resolution.h"
#include "synthetic_catalog.h"

using namespace thintrim;
using thintrim::test::errorCodeOf;
using thintrim::test::syntheticEntry;

namespace {

FilesystemCatalog sampleCatalog() {
    FilesystemCatalog catalog;
    catalog.replace({syntheticEntry("/a", {.minor = 1}), syntheticEntry("/b", {.minor = 2}),
                     syntheticEntry("/proc", {.managed = false, .minor = 3}),
                     syntheticEntry("/nodiscard", {.eligible = false, .minor = 4}),
                     syntheticEntry("/excluded", {.minor = 5})},
                    {}, {});
    FilesystemsConfig selection;
    selection.exclude = {"/excluded"};
    catalog.select(selection);
    return catalog;
}

std::string messageOf(const std::function<void()>& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

TEST_CASE("a Trim without mount points means every trimmable filesystem") {
    CHECK(trimTargets(sampleCatalog(), {}) == std::vector<std::string>{"/a", "/b"});
}

TEST_CASE("named mount points are taken as the catalog spells them, each once") {
    CHECK(trimTargets(sampleCatalog(), {"/b/", "/a", "/b"}) ==
          std::vector<std::string>{"/b", "/a"});
}

TEST_CASE("a Trim naming a filesystem that cannot be trimmed queues nothing and says why") {
    const FilesystemCatalog catalog = sampleCatalog();
    auto trim = [&](std::string mountPoint) {
        return [&catalog, mountPoint] { (void)trimTargets(catalog, {"/a", mountPoint}); };
    };
    CHECK(errorCodeOf(trim("/nowhere")) == ErrorCode::NotManaged);
    CHECK(messageOf(trim("/nowhere")) == "/nowhere is not a mount point");
    CHECK(errorCodeOf(trim("/proc")) == ErrorCode::NotManaged);
    CHECK(messageOf(trim("/proc")) == "/proc is not trimmed by thintrim: pseudo filesystem");
    CHECK(errorCodeOf(trim("/excluded")) == ErrorCode::NotManaged);
    CHECK(messageOf(trim("/excluded")) ==
          "/excluded is left out by the [Filesystems] section of the configuration");
    CHECK(errorCodeOf(trim("/nodiscard")) == ErrorCode::NotEligible);
    CHECK(messageOf(trim("/nodiscard")) == "/nodiscard cannot pass discards: sda drops discards");
}

TEST_CASE("a Verify names managed filesystems, eligible or not") {
    const FilesystemCatalog catalog = sampleCatalog();
    const std::vector<const CatalogEntry*> all = verifyTargets(catalog, {});
    REQUIRE(all.size() == 2);
    CHECK(all[0]->mount.mountPoint == "/a");
    CHECK(all[1]->mount.mountPoint == "/b");
    const std::vector<const CatalogEntry*> named = verifyTargets(catalog, {"/nodiscard"});
    REQUIRE(named.size() == 1);
    CHECK(named[0]->mount.mountPoint == "/nodiscard");
    for (const char* refused : {"/excluded", "/proc", "/nowhere"}) {
        INFO(refused);
        CHECK(errorCodeOf([&] { (void)verifyTargets(catalog, {refused}); }) ==
              ErrorCode::NotManaged);
        CHECK(messageOf([&] { (void)requireManaged(catalog, refused); }) ==
              std::string(refused) + " is not a filesystem thintrim manages");
    }
}

TEST_CASE("a queued job's filesystem is resolved again when its turn comes") {
    const FilesystemCatalog catalog = sampleCatalog();
    const Resolution found = resolveForTrim(catalog, "/a");
    REQUIRE(found.mount);
    CHECK(found.mount->mountDevice == DeviceNumber{8, 1});
    CHECK(found.skipReason.empty());

    const Resolution gone = resolveForTrim(catalog, "/excluded");
    CHECK_FALSE(gone.mount);
    CHECK(gone.skipReason == "/excluded is not mounted any more");

    const Resolution blocked = resolveForTrim(catalog, "/nodiscard");
    CHECK_FALSE(blocked.mount);
    CHECK(blocked.skipReason == "cannot pass discards: sda drops discards");
}
