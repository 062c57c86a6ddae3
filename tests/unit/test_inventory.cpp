// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"
#include "catch.h"
#include "config/config.h"
#include "discovery/catalog.h"
#include "discovery/inventory.h"
#include "fixture_paths.h"
#include "temp_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <unistd.h>

using namespace thintrim;
using thintrim::test::fixturePaths;
using thintrim::test::testData;

namespace {

// A hand-written mountinfo (and optional fstab) from tests/data. sysfs and
// /dev point at paths that do not exist, so nothing of the host is read.
SystemPaths dataPaths(const std::string& mountinfo, const std::string& fstab = "absent.fstab") {
    SystemPaths paths;
    paths.mountinfo = testData(mountinfo);
    paths.fstab = testData(fstab);
    paths.sysfsRoot = testData("absent-root");
    paths.devRoot = testData("absent-root");
    return paths;
}

// The mount with this id; fails the test when there is none.
const Mount& byId(const Inventory& inventory, int mountId) {
    auto it = std::find_if(inventory.mounts.begin(), inventory.mounts.end(),
                           [&](const Mount& mount) { return mount.mountId == mountId; });
    REQUIRE(it != inventory.mounts.end());
    return *it;
}

// The visible mount at this path; fails the test when there is none.
const Mount& at(const Inventory& inventory, std::string_view mountPoint) {
    const Mount* mount = inventory.find(mountPoint);
    INFO("mount point " << mountPoint);
    REQUIRE(mount != nullptr);
    return *mount;
}

std::string reasonOf(const Mount& mount) {
    return mount.skipReason ? std::string(skipReasonName(*mount.skipReason)) : "managed";
}

std::vector<std::string> managedMountPoints(const Inventory& inventory) {
    std::vector<std::string> points;
    for (const Mount* mount : inventory.managed())
        points.push_back(mount->mountPoint);
    return points;
}

} // namespace

TEST_CASE("mixed: read-only, hidden, pseudo, overlay and a filesystem mounted twice",
          "[inventory]") {
    const Inventory inventory = readInventory(fixturePaths("mixed"));

    const Mount& readOnly = at(inventory, "/mnt/ro");
    CHECK(reasonOf(readOnly) == "read-only");
    CHECK(readOnly.skipDetail == "mounted read-only");
    CHECK(readOnly.mountDevice == DeviceNumber{8, 1});
    CHECK(readOnly.blockDevices == std::vector<DeviceNumber>{{8, 1}});
    CHECK(readOnly.source == "/dev/sda1");
    CHECK(readOnly.vfsOptions == "ro,relatime");
    CHECK(readOnly.fsOptions == "ro");

    const Mount& under = byId(inventory, 136);
    CHECK(under.hidden);
    CHECK(reasonOf(under) == "hidden");
    CHECK(under.skipDetail.find("141") != std::string::npos);
    const Mount& onTop = at(inventory, "/mnt/h");
    CHECK(onTop.mountId == 141);
    CHECK(onTop.parentId == 136);
    CHECK(onTop.isManaged());
    CHECK(onTop.source == "/dev/sda3");

    const Mount& tmp = at(inventory, "/mnt/tmp");
    CHECK(reasonOf(tmp) == "pseudo");
    CHECK(tmp.blockDevices.empty());
    const Mount& overlay = at(inventory, "/mnt/ovl");
    CHECK(reasonOf(overlay) == "not-block-device");
    CHECK(overlay.mountDevice == DeviceNumber{0, 36});

    CHECK(at(inventory, "/mnt/twice1").isManaged());
    const Mount& twice2 = at(inventory, "/mnt/twice2");
    CHECK(reasonOf(twice2) == "duplicate");
    CHECK(twice2.skipDetail == "same filesystem as /mnt/twice1");

    for (const char* system : {"/sys", "/proc", "/dev", "/dev/pts", "/run", "/sys/fs/cgroup",
                               "/sys/fs/bpf", "/sys/kernel/config", "/sys/fs/fuse/connections",
                               "/run/credentials/systemd-sysctl.service"}) {
        INFO(system);
        CHECK(reasonOf(at(inventory, system)) == "pseudo");
    }

    CHECK(managedMountPoints(inventory) ==
          std::vector<std::string>{"/", "/trimtest", "/mnt/h", "/mnt/twice1"});
    // Fixture trees have no /dev: nothing to probe, and no error for it.
    CHECK(at(inventory, "/").uuid.empty());
}

TEST_CASE("seed-stack: a bind mount is a duplicate of the whole mount", "[inventory]") {
    const Inventory inventory = readInventory(fixturePaths("seed-stack"));

    const Mount& bind = at(inventory, "/mnt/bind");
    CHECK(bind.root == "/sub");
    CHECK(reasonOf(bind) == "duplicate");
    CHECK(bind.skipDetail == "same filesystem as /mnt/plain");
    CHECK(at(inventory, "/mnt/plain").isManaged());

    const Mount& root = at(inventory, "/mnt/root");
    CHECK(root.isManaged());
    CHECK(root.source == "/dev/mapper/vgseed-root");
    CHECK(root.blockDevices == std::vector<DeviceNumber>{{252, 1}});
    const Mount& data = at(inventory, "/mnt/data");
    CHECK(data.isManaged());
    CHECK(data.fsType == "xfs");
    CHECK(data.blockDevices == std::vector<DeviceNumber>{{252, 2}});
}

TEST_CASE("btrfs-multi: one filesystem, three mounts, two members", "[inventory]") {
    const SystemPaths paths = fixturePaths("btrfs-multi");
    std::string uuid;
    for (const auto& entry : std::filesystem::directory_iterator(paths.sys("fs/btrfs"))) {
        if (std::filesystem::is_directory(entry.path() / "devices"))
            uuid = entry.path().filename().string();
    }
    REQUIRE(uuid.size() == 36);

    const Inventory inventory = readInventory(paths);
    const Mount& top = at(inventory, "/mnt/top");
    CHECK(top.isManaged());
    CHECK(top.root == "/");
    CHECK(top.mountDevice == DeviceNumber{0, 35});
    CHECK(top.uuid == uuid);
    CHECK(top.identity() == uuid);
    CHECK(top.blockDevices == std::vector<DeviceNumber>{{8, 0}, {8, 16}});

    for (const char* subvolume : {"/mnt/a", "/mnt/b"}) {
        INFO(subvolume);
        const Mount& mount = at(inventory, subvolume);
        CHECK(reasonOf(mount) == "duplicate");
        CHECK(mount.skipDetail == "same filesystem as /mnt/top");
        CHECK(mount.uuid == uuid);
        CHECK(mount.blockDevices == top.blockDevices);
    }
    CHECK(at(inventory, "/mnt/b").root == "/@b");
}

TEST_CASE("raid5: a loop device is a block device like any other", "[inventory]") {
    const Inventory inventory = readInventory(fixturePaths("raid5"));
    const Mount& loop = at(inventory, "/mnt/loop");
    CHECK(loop.isManaged());
    CHECK(loop.source == "/dev/loop0");
    CHECK(loop.blockDevices == std::vector<DeviceNumber>{{7, 0}});
    CHECK(at(inventory, "/mnt/r5").blockDevices == std::vector<DeviceNumber>{{9, 0}});
}

TEST_CASE("network, autofs and FITRIM-less types are skipped", "[inventory]") {
    const Inventory inventory = readInventory(dataPaths("skipped-types.mountinfo"));

    for (const char* network : {"/mnt/nfs", "/mnt/cifs", "/mnt/ceph", "/mnt/sshfs"}) {
        INFO(network);
        const Mount& mount = at(inventory, network);
        CHECK(reasonOf(mount) == "network");
        CHECK(mount.skipDetail == "network filesystem: discards cannot pass over the network");
        CHECK(mount.uuid.empty());
    }
    CHECK(at(inventory, "/mnt/nfs").source == "server.example:/export");
    CHECK(at(inventory, "/mnt/cifs").source == "//fileserver/share");
    CHECK(reasonOf(at(inventory, "/home/auto")) == "autofs");

    // Read-only too, but the type is what rules it out.
    const Mount& cdrom = at(inventory, "/media/cdrom");
    CHECK(reasonOf(cdrom) == "unsupported-type");
    CHECK(cdrom.skipDetail.find("iso9660") != std::string::npos);
    CHECK(cdrom.blockDevices == std::vector<DeviceNumber>{{11, 0}});
    CHECK(reasonOf(at(inventory, "/snap/core/1")) == "unsupported-type");

    const Mount& spaced = at(inventory, "/mnt/my disk");
    CHECK(spaced.mountPoint == "/mnt/my disk");
    CHECK(spaced.isManaged());
    CHECK(managedMountPoints(inventory) == std::vector<std::string>{"/", "/mnt/my disk"});
}

TEST_CASE("X-fstrim.notrim in fstab rules out the filesystem", "[inventory]") {
    const Inventory inventory = readInventory(dataPaths("notrim.mountinfo", "notrim.fstab"));

    const Mount& keep = at(inventory, "/srv/keep");
    CHECK(reasonOf(keep) == "notrim");
    CHECK(keep.skipDetail.find("X-fstrim.notrim") != std::string::npos);
    // Trimming through the bind mount would trim the same filesystem.
    const Mount& bind = at(inventory, "/srv/keep-bind");
    CHECK(reasonOf(bind) == "notrim");
    CHECK(bind.skipDetail.find("/srv/keep,") != std::string::npos);
    CHECK(managedMountPoints(inventory) == std::vector<std::string>{"/", "/srv/trim"});

    // Without the fstab the same mounts are managed.
    const Inventory withoutFstab = readInventory(dataPaths("notrim.mountinfo"));
    CHECK(at(withoutFstab, "/srv/keep").isManaged());
    CHECK(reasonOf(at(withoutFstab, "/srv/keep-bind")) == "duplicate");
}

TEST_CASE("the whole tree represents a filesystem, also when that view is read-only",
          "[inventory]") {
    const Inventory inventory = readInventory(dataPaths("read-only.mountinfo"));

    // The whole tree is a read-only view, a subtree is bound writable on top
    // of it. FITRIM works through either (the superblock is writable), and the
    // whole tree reads best: the same rule keeps / ahead of the /tmp that
    // PrivateTmp= binds from a subtree of it.
    const Mount& archive = at(inventory, "/mnt/archive");
    CHECK(archive.mountId == 400);
    CHECK(archive.isManaged());
    const Mount& projects = at(inventory, "/mnt/archive/projects");
    CHECK(reasonOf(projects) == "duplicate");
    CHECK(projects.skipDetail == "same filesystem as /mnt/archive");

    CHECK(reasonOf(at(inventory, "/mnt/old1")) == "read-only");
    CHECK(at(inventory, "/mnt/old2").skipDetail == "same filesystem as /mnt/old1");

    // A superblock forced read-only (errors=remount-ro) under an rw mount.
    const Mount& errored = at(inventory, "/mnt/errored");
    CHECK(reasonOf(errored) == "read-only");
    CHECK(errored.skipDetail.find("superblock") != std::string::npos);
}

TEST_CASE("mounts below a directory mounted over are hidden", "[inventory]") {
    const Inventory inventory = readInventory(dataPaths("covered.mountinfo"));

    const Mount& inner = byId(inventory, 500);
    CHECK(reasonOf(inner) == "hidden");
    CHECK(inner.skipDetail.find("/mnt/x") != std::string::npos);
    const Mount& deeper = byId(inventory, 505);
    CHECK(reasonOf(deeper) == "hidden");
    CHECK(deeper.skipDetail.find("/mnt/x/inner") != std::string::npos);
    // The earlier check wins, but the mount is still known to be hidden.
    const Mount& tmp = byId(inventory, 508);
    CHECK(reasonOf(tmp) == "pseudo");
    CHECK(tmp.hidden);

    CHECK(inventory.find("/mnt/x/inner") == nullptr);
    CHECK(inventory.find("/mnt/x/inner/deeper") == nullptr);
    CHECK(at(inventory, "/mnt/x").mountId == 510);
    CHECK(managedMountPoints(inventory) == std::vector<std::string>{"/", "/mnt/x"});
}

TEST_CASE("find ignores trailing slashes", "[inventory]") {
    const Inventory inventory = readInventory(fixturePaths("seed-stack"));
    REQUIRE(inventory.find("/mnt/plain/") != nullptr);
    CHECK(inventory.find("/mnt/plain//")->mountId == 143);
    CHECK(inventory.find("/")->mountId == 27);
    CHECK(inventory.find("///")->mountId == 27);
    CHECK(inventory.find("/mnt/pla") == nullptr);
    CHECK(inventory.find("") == nullptr);
}

TEST_CASE("UUID and label come from the superblock under devRoot", "[inventory]") {
    namespace fs = std::filesystem;
    const fs::path devRoot =
        fs::temp_directory_path() / ("thintrim-inventory-" + std::to_string(::getpid()));
    fs::create_directories(devRoot / "dev/block");

    // A minimal ext2 superblock: magic, UUID and volume name at their offsets.
    std::vector<unsigned char> image(64 * 1024);
    constexpr std::size_t superblock = 1024;
    image[superblock + 0x38] = 0x53;
    image[superblock + 0x39] = 0xef;
    const unsigned char uuid[16] = {0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78,
                                    0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0};
    std::copy(std::begin(uuid), std::end(uuid), image.begin() + superblock + 0x68);
    const std::string label = "probed";
    std::copy(label.begin(), label.end(), image.begin() + superblock + 0x78);
    {
        std::ofstream node(devRoot / "dev/block/8:81", std::ios::binary);
        node.write(reinterpret_cast<const char*>(image.data()),
                   static_cast<std::streamsize>(image.size()));
    }

    SystemPaths paths = dataPaths("probe.mountinfo");
    paths.devRoot = devRoot;
    const Inventory inventory = readInventory(paths);
    fs::remove_all(devRoot);

    const Mount& probed = at(inventory, "/mnt/probed");
    CHECK(probed.uuid == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    CHECK(probed.label == "probed");
    CHECK(probed.identity() == probed.uuid);
    const Mount& root = at(inventory, "/");
    CHECK(root.uuid.empty());
    CHECK(root.identity() == "/dev/vda");
}

TEST_CASE("an unreadable or foreign mount table is an error", "[inventory]") {
    SECTION("missing") {
        const SystemPaths paths = dataPaths("no-such.mountinfo");
        try {
            (void)readInventory(paths);
            FAIL("no error");
        } catch (const Error& error) {
            CHECK(error.code() == ErrorCode::Failed);
            CHECK(std::string(error.what()) == "cannot read mount table " +
                                                   paths.mountinfo.string() +
                                                   ": No such file or directory");
        }
    }
    SECTION("not a mount table") {
        const SystemPaths paths = dataPaths("garbage.mountinfo");
        CHECK_THROWS_WITH(readInventory(paths),
                          thintrim::test::Contains(paths.mountinfo.string()) &&
                              thintrim::test::Contains("line 1"));
    }
    SECTION("an fstab given as mountinfo") {
        const SystemPaths paths = dataPaths("notrim.fstab");
        CHECK_THROWS_WITH(readInventory(paths),
                          thintrim::test::Contains("not in /proc/self/mountinfo"));
    }
}

TEST_CASE("skip reasons and FITRIM support by name", "[inventory]") {
    CHECK(skipReasonName(SkipReason::NoTrimOption) == "notrim");
    CHECK(skipReasonName(SkipReason::NotBlockDevice) == "not-block-device");
    CHECK(skipReasonName(SkipReason::UnsupportedType) == "unsupported-type");
    CHECK(skipReasonName(SkipReason::ReadOnly) == "read-only");
    for (const char* type : {"ext4", "xfs", "btrfs", "vfat", "f2fs", "bcachefs"})
        CHECK(fsTypeSupportsFitrim(type));
    for (const char* type : {"iso9660", "squashfs", "erofs", "udf", "tmpfs", ""})
        CHECK_FALSE(fsTypeSupportsFitrim(type));
}

TEST_CASE("a read-only view of a writable filesystem is still trimmed", "[inventory]") {
    // What the daemon sees under systemd's ProtectSystem=strict: every mount
    // re-bound read-only while the superblocks stay writable. FITRIM works
    // through an O_RDONLY descriptor, so only a read-only superblock skips.
    const Inventory inventory = readInventory(dataPaths("protect-system.mountinfo"));
    CHECK(at(inventory, "/").isManaged());
    // PrivateTmp=yes: writable binds of a subtree of the root filesystem.
    CHECK(at(inventory, "/tmp").skipDetail == "same filesystem as /");
    CHECK(at(inventory, "/var/tmp").skipDetail == "same filesystem as /");
    CHECK(at(inventory, "/srv/data").isManaged());
    const Mount& cold = at(inventory, "/srv/cold");
    CHECK(reasonOf(cold) == "read-only");
    CHECK(cold.skipDetail == "mounted read-only");
    CHECK(managedMountPoints(inventory) == std::vector<std::string>{"/", "/srv/data"});
}

TEST_CASE("an automount: the filesystem mounted on it, never the trigger", "[inventory]") {
    // x-systemd.automount: autofs at /mnt/auto (mount 50), the ext4 mounted
    // over it on first access (51, parent 50); /mnt/idle not accessed yet.
    SystemPaths paths = dataPaths("automount.mountinfo");
    const Inventory inventory = readInventory(paths);

    const Mount& mounted = at(inventory, "/mnt/auto");
    CHECK(mounted.mountId == 51);
    CHECK(mounted.isManaged());
    CHECK_FALSE(mounted.hidden);
    CHECK(reasonOf(byId(inventory, 50)) == "autofs");
    CHECK(byId(inventory, 50).hidden);

    const Mount& idle = byId(inventory, 52);
    CHECK(reasonOf(idle) == "autofs");
    CHECK_THAT(idle.skipDetail, thintrim::test::Contains("not mounted now"));

    // `thintrim stack /mnt/auto` and Trim look it up through the catalog.
    const std::vector<CatalogEntry> catalog = buildCatalog(paths, inventory);
    const CatalogEntry* entry = findEntry(catalog, "/mnt/auto/");
    REQUIRE(entry != nullptr);
    CHECK(entry->mount.mountId == 51);
    REQUIRE(findEntry(catalog, "/mnt/idle") != nullptr);
    CHECK(findEntry(catalog, "/mnt/idle")->mount.fsType == "autofs");
}

TEST_CASE("what users mount is skipped unless UserMedia=yes", "[inventory]") {
    const SystemPaths paths = dataPaths("user-media.mountinfo", "user-media.fstab");
    const Inventory inventory = readInventory(paths);
    CHECK(reasonOf(at(inventory, "/media/alice/STICK")) == "user-mount");
    CHECK_THAT(at(inventory, "/media/alice/STICK").skipDetail,
               thintrim::test::Contains("mounted by a user"));
    CHECK(reasonOf(at(inventory, "/run/media/bob/image")) == "user-mount");
    // In fstab: the system mounts it, wherever it is.
    CHECK(at(inventory, "/media/data").isManaged());
    CHECK(at(inventory, "/").isManaged());

    InventoryOptions options;
    options.userMedia = true;
    const Inventory optedIn = readInventory(paths, options);
    CHECK(at(optedIn, "/media/alice/STICK").isManaged());
    CHECK(at(optedIn, "/run/media/bob/image").isManaged());
}

TEST_CASE("[Filesystems] Include=/Exclude=/Types= leave mounts out as excluded", "[inventory]") {
    const SystemPaths paths = dataPaths("user-media.mountinfo", "user-media.fstab");
    FilesystemsConfig filesystems;
    filesystems.exclude = {"/media/*"};
    const Inventory inventory = readInventory(paths, inventoryOptions(filesystems));
    CHECK(reasonOf(at(inventory, "/media/data")) == "excluded");
    CHECK_THAT(at(inventory, "/media/data").skipDetail, thintrim::test::Contains("[Filesystems]"));
    CHECK(at(inventory, "/").isManaged());
    // The first reason stands: a user's mount is not called excluded.
    CHECK(reasonOf(at(inventory, "/media/alice/STICK")) == "user-mount");

    filesystems = {};
    filesystems.include = {"/", "/media/*"};
    filesystems.types = {"xfs", "vfat"};
    const Inventory typed = readInventory(paths, inventoryOptions(filesystems));
    CHECK(reasonOf(at(typed, "/")) == "excluded"); // ext4
    CHECK(reasonOf(at(typed, "/media/data")) == "excluded");
}

TEST_CASE("a filesystem on a removable device is skipped unless UserMedia=yes", "[inventory]") {
    // A copy of a captured sysfs with one disk marked removable, as the
    // kernel marks USB sticks and SD cards; sdb1's stack reaches sdb.
    thintrim::test::TempDir dir;
    const SystemPaths paths = thintrim::test::writableFixturePaths("nodiscard-disk", dir.path());
    const std::filesystem::path disk = std::filesystem::canonical(paths.sys("dev/block/8:16"));
    std::ofstream(disk / "removable") << "1\n";

    const std::vector<CatalogEntry> catalog = buildCatalog(paths, readInventory(paths));
    const CatalogEntry* stick = findEntry(catalog, "/mnt/nd-scsi");
    REQUIRE(stick != nullptr);
    CHECK(reasonOf(stick->mount) == "removable");
    CHECK_THAT(stick->reason(), thintrim::test::Contains("removable device (sdb)"));
    CHECK(findEntry(catalog, "/")->mount.isManaged());

    InventoryOptions options;
    options.userMedia = true;
    const std::vector<CatalogEntry> optedIn =
        buildCatalog(paths, readInventory(paths, options), options);
    CHECK(findEntry(optedIn, "/mnt/nd-scsi")->mount.isManaged());
}

namespace {

// A mount table of 10,000 lines as a container host has them, with a known
// answer for every mount.
struct GeneratedTable {
    std::filesystem::path file;
    std::size_t lines = 0;
};

GeneratedTable writeLargeMountTable(const std::filesystem::path& dir) {
    GeneratedTable table{dir / "mountinfo", 0};
    std::ofstream out(table.file);
    auto line = [&](int id, int parent, const std::string& device, const std::string& path,
                    const std::string& type, const std::string& source) {
        out << id << ' ' << parent << ' ' << device << " / " << path << " rw,relatime - " << type
            << ' ' << source << " rw\n";
        ++table.lines;
    };
    line(1, 0, "254:0", "/", "ext4", "/dev/vda");
    // 5,000 bind mounts of the root filesystem: duplicates of /.
    for (int i = 0; i < 5000; ++i)
        line(100 + i, 1, "254:0", "/srv/d" + std::to_string(i), "ext4", "/dev/vda");
    // Every fifth of them over-mounted by one of four other filesystems:
    // hidden underneath, the four each managed once, the rest duplicates.
    for (int i = 0; i < 1000; ++i)
        line(10000 + i, 100 + i * 5, "254:" + std::to_string(16 + i % 4),
             "/srv/d" + std::to_string(i * 5), "ext4", "/dev/vd" + std::string(1, 'b' + i % 4));
    // 1,000 tmpfs with a bind mount of / inside; half of them then covered
    // by a second tmpfs on the same path: both below it are hidden.
    for (int i = 0; i < 1000; ++i) {
        line(20000 + i, 1, "0:" + std::to_string(100 + i), "/run/c" + std::to_string(i), "tmpfs",
             "tmpfs");
        line(30000 + i, 20000 + i, "254:0", "/run/c" + std::to_string(i) + "/vol", "ext4",
             "/dev/vda");
    }
    for (int i = 0; i < 1000; i += 2)
        line(40000 + i, 20000 + i, "0:" + std::to_string(2000 + i), "/run/c" + std::to_string(i),
             "tmpfs", "tmpfs");
    // Overlays up to 10,000 lines: not on a block device.
    for (int i = 0; table.lines < 10000; ++i)
        line(50000 + i, 1, "0:" + std::to_string(5000 + i), "/var/lib/docker/o" + std::to_string(i),
             "overlay", "overlay");
    return table;
}

} // namespace

TEST_CASE("10,000 mounts: hidden and duplicate mounts found as with ten", "[inventory]") {
    thintrim::test::TempDir dir;
    const GeneratedTable table = writeLargeMountTable(dir.path());
    REQUIRE(table.lines == 10000);
    SystemPaths paths = dataPaths("absent.mountinfo");
    paths.mountinfo = table.file;
    DeviceNameCache names;
    const Inventory inventory = readInventory(paths, {}, &names);
    REQUIRE(inventory.mounts.size() == 10000);

    std::map<std::string, int> reasons;
    int hidden = 0;
    for (const Mount& mount : inventory.mounts) {
        ++reasons[reasonOf(mount)];
        hidden += mount.hidden ? 1 : 0;
    }
    CHECK(managedMountPoints(inventory) ==
          std::vector<std::string>{"/", "/srv/d0", "/srv/d5", "/srv/d10", "/srv/d15"});
    CHECK(hidden == 1000 + 500 + 500);
    CHECK(reasons["hidden"] == 1000 + 500); // binds under over-mounts, hidden vols
    CHECK(reasons["pseudo"] == 1500);       // every tmpfs, hidden ones included
    CHECK(reasons["duplicate"] == 4000 + 500 + 996);
    CHECK(reasons["not-block-device"] == 10000 - 1 - 5000 - 1000 - 2500);

    CHECK(byId(inventory, 100 + 5 * 7).hidden);
    CHECK_THAT(byId(inventory, 100 + 5 * 7).skipDetail, thintrim::test::Contains("over-mounted"));
    CHECK(at(inventory, "/srv/d35").mountId == 10007);
    CHECK_FALSE(byId(inventory, 100 + 6).hidden);
    CHECK(byId(inventory, 30000 + 2).hidden);
    CHECK_FALSE(byId(inventory, 30000 + 3).hidden);
    CHECK(at(inventory, "/run/c2").mountId == 40002);

    // One look-up per device, and none for a device already known.
    CHECK(names.lookups == 5);
    (void)readInventory(paths, {}, &names);
    CHECK(names.lookups == 5);
    CHECK(names.devices.size() == 5);
}
