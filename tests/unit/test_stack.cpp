// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"
#include "catch.h"
#include "fixture_paths.h"
#include "stack/block_stack.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <stdlib.h>
#include <sys/sysmacros.h>

using namespace thintrim;
using thintrim::test::fixturePaths;
namespace fs = std::filesystem;

namespace {

// ---- meta/expected.txt, written by the capture in the guest ----------------

struct ExpectedLayer {
    unsigned depth = 0;
    std::string name;
    std::string device;
    std::string kind;
    std::uint64_t maxBytes = 0;
    std::uint64_t maxHwBytes = 0;
    std::uint64_t granularity = 0;
    bool passes = false;
    std::string detail;
};

// One "mount ..." or "swap ..." block of the details section.
struct ExpectedStack {
    std::string title;
    std::vector<std::string> topNames;
    std::string canDiscard; // "yes", "no", "n/a"
    std::vector<std::string> droppedBy;
    std::vector<ExpectedLayer> layers;
};

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    for (std::string part; std::getline(in, part, separator);)
        parts.push_back(part);
    return parts;
}

std::vector<std::string> words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string word; in >> word;)
        out.push_back(word);
    return out;
}

// "dm-0: dm-crypt without ..." -> {"dm-0"}; "-" -> {}.
std::vector<std::string> droppedByNames(const std::string& value) {
    if (value == "-")
        return {};
    return split(value.substr(0, value.find(':')), ',');
}

// "    2     md0 9:0 md 1073741824 1073741824 4096 yes  md level=raid1 ..."
std::optional<ExpectedLayer> parseLayerLine(const std::string& line) {
    auto fields = words(line);
    if (fields.size() < 8 || fields[0].find_first_not_of("0123456789") != std::string::npos ||
        fields[2].find(':') == std::string::npos)
        return std::nullopt;
    ExpectedLayer layer;
    layer.depth = static_cast<unsigned>(std::stoul(fields[0]));
    layer.name = fields[1];
    layer.device = fields[2];
    layer.kind = fields[3];
    layer.maxBytes = std::stoull(fields[4]);
    layer.maxHwBytes = std::stoull(fields[5]);
    layer.granularity = std::stoull(fields[6]);
    layer.passes = fields[7] == "yes";
    auto detailStart = line.find("  ", line.find(" " + fields[7]) + 1);
    if (detailStart != std::string::npos)
        layer.detail = line.substr(line.find_first_not_of(' ', detailStart));
    return layer;
}

std::vector<ExpectedStack> readExpected(const SystemPaths& paths) {
    std::ifstream in(paths.sysfsRoot / "meta" / "expected.txt");
    REQUIRE(in);
    std::vector<ExpectedStack> stacks;
    bool inDetails = false;
    for (std::string line; std::getline(in, line);) {
        if (line == "## details") {
            inDetails = true;
            continue;
        }
        if (!inDetails || line.empty())
            continue;
        if (line.starts_with("mount ") || line.starts_with("swap ")) {
            stacks.push_back({});
            stacks.back().title = line;
            continue;
        }
        REQUIRE(!stacks.empty());
        ExpectedStack& stack = stacks.back();
        std::string text = line.substr(line.find_first_not_of(' '));
        if (text.starts_with("top device(s): ")) {
            std::string names = words(text)[2];
            if (names != "-")
                stack.topNames = split(names, ',');
        } else if (text.starts_with("top device: ")) {
            // swap: "top device: sdb2 can_discard=yes dropped_by=-"
            auto fields = words(text);
            stack.topNames = {fields[2]};
            stack.canDiscard = fields[3].substr(fields[3].find('=') + 1);
            stack.droppedBy = droppedByNames(fields[4].substr(fields[4].find('=') + 1));
        } else if (text.starts_with("can_discard=")) {
            stack.canDiscard = words(text.substr(12))[0];
        } else if (text.starts_with("dropped_by=")) {
            stack.droppedBy = droppedByNames(text.substr(11));
        } else if (auto layer = parseLayerLine(line)) {
            stack.layers.push_back(*layer);
        }
    }
    return stacks;
}

// The capture's detail says more ("dm name=X uuid=... target=linear"); ours
// must at least name what a person recognises the layer by.
void checkDetail(const Layer& layer, const std::string& expected) {
    INFO("our detail: " << layer.detail << "; capture's: " << expected);
    switch (layer.kind) {
    case LayerKind::Disk:
        CHECK(layer.detail == expected);
        break;
    case LayerKind::Partition:
        CHECK(expected.starts_with(layer.detail + " "));
        break;
    case LayerKind::Loop:
        CHECK(expected == "loop backing_file=" + layer.detail);
        break;
    case LayerKind::Md:
        CHECK_THAT(expected, thintrim::test::Contains(
                                 "level=" + layer.detail.substr(0, layer.detail.find(',')) + " "));
        break;
    case LayerKind::Crypt:
    case LayerKind::Lvm:
    case LayerKind::Thin:
    case LayerKind::Dm:
        CHECK_THAT(expected, thintrim::test::StartsWith("dm name=" + layer.detail + " "));
        break;
    }
}

std::vector<std::string> culpritNames(const BlockStack& stack) {
    std::vector<std::string> names;
    for (std::size_t index : stack.verdict.culprits)
        names.push_back(stack.layers.at(index).name);
    return names;
}

BlockStack walk(const std::string& fixture, const std::string& device) {
    return walkBlockStack(fixturePaths(fixture), {DeviceNumber::parse(device)});
}

// ---- a hand-made sysfs tree for the cases no capture has --------------------

class FakeSysfs {
public:
    FakeSysfs() {
        std::string pattern = (fs::temp_directory_path() / "thintrim-stack-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        root_ = pattern;
    }
    ~FakeSysfs() {
        std::error_code ignored;
        fs::remove_all(root_, ignored);
    }
    FakeSysfs(const FakeSysfs&) = delete;
    FakeSysfs& operator=(const FakeSysfs&) = delete;

    [[nodiscard]] SystemPaths paths() const {
        SystemPaths paths;
        paths.sysfsRoot = root_;
        paths.devRoot = root_ / "dev";
        return paths;
    }

    // A device under sys/devices/<where>, reachable by number and name.
    void device(const std::string& where, const std::string& number, std::uint64_t maxBytes) {
        fs::path dir = sys("devices") / where;
        file(dir / "dev", number);
        file(dir / "size", "2097152");
        file(dir / "queue" / "discard_max_bytes", std::to_string(maxBytes));
        file(dir / "queue" / "discard_max_hw_bytes", std::to_string(maxBytes));
        file(dir / "queue" / "discard_granularity", maxBytes > 0 ? "4096" : "0");
        link(sys("dev/block") / number, dir);
        link(sys("class/block") / dir.filename(), dir);
    }

    void partition(const std::string& disk, const std::string& name, const std::string& number,
                   unsigned partitionNumber) {
        fs::path dir = sys("devices") / disk / name;
        file(dir / "dev", number);
        file(dir / "partition", std::to_string(partitionNumber));
        link(sys("dev/block") / number, dir);
        link(sys("class/block") / name, dir);
    }

    void dm(const std::string& name, const std::string& number, std::uint64_t maxBytes,
            const std::string& dmName, const std::string& uuid) {
        device("virtual/block/" + name, number, maxBytes);
        file(sys("devices/virtual/block") / name / "dm" / "name", dmName);
        file(sys("devices/virtual/block") / name / "dm" / "uuid", uuid);
    }

    void scsiDisk(const std::string& name, const std::string& number, std::uint64_t maxBytes,
                  const std::string& provisioningMode) {
        std::string host = "pci0000:00/host0/0:0:" + number.substr(number.find(':') + 1) + ":0";
        device(host + "/block/" + name, number, maxBytes);
        file(sys("devices") / host / "scsi_disk/0:0:0:0/provisioning_mode", provisioningMode);
        link(sys("devices") / host / "block" / name / "device", sys("devices") / host);
    }

    // `lower` (a path under sys/devices) becomes a slave of `upper`.
    void slave(const std::string& upper, const std::string& lower) {
        fs::path lowerDir = sys("devices") / lower;
        link(sys("devices") / upper / "slaves" / lowerDir.filename(), lowerDir);
    }

    void file(const fs::path& path, const std::string& content) {
        fs::create_directories(path.parent_path());
        std::ofstream(path) << content << "\n";
    }

    [[nodiscard]] fs::path sys(const std::string& relative) const {
        return root_ / "sys" / relative;
    }

private:
    // Relative, as the kernel's own links are.
    static void link(const fs::path& at, const fs::path& target) {
        fs::create_directories(at.parent_path());
        fs::create_directories(target);
        fs::create_directory_symlink(fs::relative(target, at.parent_path()), at);
    }

    fs::path root_;
};

const std::vector<std::string> kFixtures{
    "seed-stack",  "crypt-nodiscard", "lvm-thin",   "nodiscard-disk",
    "btrfs-multi", "raid5",           "raid5-safe", "mixed"};

} // namespace

TEST_CASE("every captured stack walks to the layers, verdict and culprits the guest saw") {
    const std::string fixture = GENERATE(from_range(kFixtures));
    INFO("fixture " << fixture);
    const SystemPaths paths = fixturePaths(fixture);
    const auto expectedStacks = readExpected(paths);

    std::size_t checkedStacks = 0;
    for (const ExpectedStack& expected : expectedStacks) {
        INFO(expected.title);
        if (expected.topNames.empty()) {
            // tmpfs, overlay: no block device, no stack in the capture either.
            CHECK(expected.layers.empty());
            continue;
        }
        REQUIRE(!expected.layers.empty());

        // btrfs shows an anonymous 0:N in mountinfo; its members are the tops.
        std::vector<DeviceNumber> tops;
        std::vector<std::string> topNames;
        for (const ExpectedLayer& layer : expected.layers) {
            if (layer.depth == 0) {
                tops.push_back(DeviceNumber::parse(layer.device));
                topNames.push_back(layer.name);
                CHECK(deviceNumberOf(paths, "/dev/" + layer.name) == tops.back());
            }
        }
        CHECK(topNames == expected.topNames);

        const BlockStack stack = walkBlockStack(paths, tops);
        REQUIRE(stack.layers.size() == expected.layers.size());
        for (std::size_t i = 0; i < stack.layers.size(); ++i) {
            const Layer& ours = stack.layers[i];
            const ExpectedLayer& theirs = expected.layers[i];
            INFO("layer " << i << ": " << theirs.name);
            CHECK(ours.depth == theirs.depth);
            CHECK(ours.name == theirs.name);
            CHECK(ours.device.toString() == theirs.device);
            CHECK(layerKindName(ours.kind) == theirs.kind);
            CHECK(ours.discardMaxBytes == theirs.maxBytes);
            CHECK(ours.discardMaxHwBytes == theirs.maxHwBytes);
            CHECK(ours.discardGranularity == theirs.granularity);
            CHECK(ours.passesDiscards() == theirs.passes);
            CHECK(ours.sizeBytes > 0);
            checkDetail(ours, theirs.detail);
        }
        CHECK(stack.tops().size() == tops.size());
        CHECK((stack.verdict.eligible ? "yes" : "no") == expected.canDiscard);
        CHECK(culpritNames(stack) == expected.droppedBy);
        CHECK_FALSE(stack.verdict.reason.empty());
        for (const std::string& culprit : expected.droppedBy)
            CHECK_THAT(stack.verdict.reason, thintrim::test::Contains(culprit));
        ++checkedStacks;
    }
    // / and /trimtest at least, plus the scenario's own mounts.
    CHECK(checkedStacks >= 3);
}

TEST_CASE("crypt without allow_discards is named with the crypttab fix") {
    BlockStack stack = walk("crypt-nodiscard", "252:1");
    CHECK_FALSE(stack.verdict.eligible);
    REQUIRE(stack.verdict.culprits == std::vector<std::size_t>{1});
    CHECK(stack.layers[1].kind == LayerKind::Crypt);
    CHECK(stack.layers[1].detail == "seedcrypt");
    CHECK(stack.verdict.reason ==
          "dm-crypt device seedcrypt (dm-0) drops discards: add `discard` to its options in "
          "/etc/crypttab (or open it with cryptsetup --allow-discards) and reopen it");
}

TEST_CASE("raid5 drops discards despite a non-zero granularity") {
    BlockStack stack = walk("raid5", "9:0");
    REQUIRE(stack.layers.size() == 7);
    const Layer& md = stack.layers[0];
    CHECK(md.kind == LayerKind::Md);
    CHECK(md.discardGranularity == 1048576);
    CHECK(md.discardMaxBytes == 0);
    CHECK(md.detail == "raid5, 3 devices");
    CHECK_FALSE(stack.verdict.eligible);
    CHECK(culpritNames(stack) == std::vector<std::string>{"md0"});
    CHECK_THAT(stack.verdict.reason,
               thintrim::test::StartsWith("md raid5 array md0 drops discards") &&
                   thintrim::test::Contains("devices_handle_discard_safely=Y"));

    BlockStack safe = walk("raid5-safe", "9:0");
    CHECK(safe.verdict.eligible);
    CHECK(safe.verdict.culprits.empty());
    CHECK(safe.verdict.reason == "discards pass through 7 layers down to sda, sdb, sdc");
}

TEST_CASE("a loop device is a leaf that passes even on an array that drops discards") {
    BlockStack stack = walk("raid5", "7:0");
    REQUIRE(stack.layers.size() == 1);
    CHECK(stack.layers[0].kind == LayerKind::Loop);
    CHECK(stack.layers[0].detail == "/mnt/r5/loop.img");
    CHECK(stack.layers[0].discardMaxBytes == 4294966784);
    CHECK(stack.verdict.eligible);
    CHECK(stack.verdict.reason == "discards pass through 1 layer down to loop0");
}

TEST_CASE("thin LVs report more than their pool, which they sit on") {
    for (const char* thin : {"252:4", "252:5"}) {
        INFO(thin);
        BlockStack stack = walk("lvm-thin", thin);
        REQUIRE(stack.layers.size() == 6);
        const Layer& volume = stack.layers[0];
        const Layer& pool = stack.layers[1];
        CHECK(volume.kind == LayerKind::Thin);
        CHECK(volume.discardMaxBytes == 17179869184);
        CHECK(volume.discardMaxHwBytes == 1073741824);
        CHECK(pool.kind == LayerKind::Thin);
        CHECK(pool.detail == "vgthin-pool-tpool");
        CHECK(pool.discardMaxBytes == 1073741824);
        CHECK(volume.discardMaxBytes > pool.discardMaxBytes);
        CHECK(stack.layers[2].detail == "vgthin-pool_tmeta");
        CHECK(stack.layers[2].kind == LayerKind::Lvm);
        // sda is reached through tmeta and tdata but is one device.
        CHECK(stack.verdict.reason == "discards pass through 5 layers down to sda");
    }
    // The public pool device is a linear map over the tpool, not a thin LV.
    BlockStack publicPool = walk("lvm-thin", "252:3");
    CHECK(publicPool.layers.at(0).detail == "vgthin-pool");
    CHECK(publicPool.layers.at(0).kind == LayerKind::Lvm);
    CHECK(walk("lvm-thin", "252:6").layers.at(0).kind == LayerKind::Lvm);
}

TEST_CASE("a disk that does not advertise discard gets the hypervisor fix") {
    BlockStack scsi = walk("nodiscard-disk", "8:17");
    CHECK(culpritNames(scsi) == std::vector<std::string>{"sdb"});
    CHECK(scsi.layers.at(1).detail == "scsi disk provisioning_mode=full");
    CHECK_THAT(
        scsi.verdict.reason,
        thintrim::test::StartsWith("the virtual disk sdb does not advertise discard (SCSI "
                                   "provisioning_mode=full): enable discard on the hypervisor") &&
            thintrim::test::Contains("Proxmox") && thintrim::test::Contains("discard='unmap'"));

    BlockStack virtio = walk("nodiscard-disk", "254:33");
    CHECK(culpritNames(virtio) == std::vector<std::string>{"vdc"});
    CHECK_THAT(virtio.verdict.reason, thintrim::test::StartsWith("the virtual disk vdc") &&
                                          thintrim::test::Contains("virtio-blk") &&
                                          thintrim::test::Contains("Proxmox") &&
                                          thintrim::test::Contains("discard='unmap'"));

    // The LV on vdc2 is not at fault: vdc under it is.
    BlockStack lv = walk("nodiscard-disk", "252:0");
    CHECK(culpritNames(lv) == std::vector<std::string>{"vdc"});
}

TEST_CASE("an LV spanning a discard disk and a no-discard disk blames the latter") {
    BlockStack stack = walk("nodiscard-disk", "252:2");
    CHECK_FALSE(stack.verdict.eligible);
    CHECK(culpritNames(stack) == std::vector<std::string>{"sdb"});
    CHECK_THAT(
        stack.verdict.reason,
        thintrim::test::StartsWith("the virtual disk sdb does not advertise discard") &&
            thintrim::test::EndsWith("; LVM volume vgmix/span (dm-2) spans sdb and sda1, and one "
                                     "leg without discard turns them off for the whole device"));
}

TEST_CASE("btrfs members are the tops") {
    const SystemPaths paths = fixturePaths("btrfs-multi");
    BlockStack stack = walkBlockStack(paths, {DeviceNumber{8, 0}, DeviceNumber{8, 16}});
    auto tops = stack.tops();
    REQUIRE(tops.size() == 2);
    CHECK(tops[0]->name == "sda");
    CHECK(tops[1]->name == "sdb");
    CHECK(stack.verdict.eligible);
    CHECK(stack.verdict.reason == "discards pass through 2 layers down to sda, sdb");
}

TEST_CASE("device paths and names resolve through sysfs") {
    const SystemPaths paths = fixturePaths("seed-stack");
    CHECK(deviceNumberOf(paths, "/dev/mapper/vgseed-root") == DeviceNumber{252, 1});
    CHECK(deviceNumberOf(paths, "/dev/vgseed/root") == DeviceNumber{252, 1});
    CHECK(deviceNumberOf(paths, "vgseed-data") == DeviceNumber{252, 2});
    CHECK(deviceNumberOf(paths, "/dev/mapper/seedcrypt") == DeviceNumber{252, 0});
    CHECK(deviceNumberOf(paths, "dm-0") == DeviceNumber{252, 0});
    CHECK(deviceNumberOf(paths, "/dev/sda1") == DeviceNumber{8, 1});
    CHECK(deviceNumberOf(paths, "sdb2") == DeviceNumber{8, 18});
    CHECK(deviceNumberOf(paths, "/dev/md0") == DeviceNumber{9, 0});
    CHECK(deviceNumberOf(paths, "8:2") == DeviceNumber{8, 2});
    for (const char* unknown : {"/dev/sdz", "sdz", "/dev/mapper/nosuch", "/dev/vgseed/nosuch",
                                "/dev/a/b/c", "8:99", "", "..", "/dev/../sda"}) {
        INFO(unknown);
        CHECK_FALSE(deviceNumberOf(paths, unknown).has_value());
    }
}

TEST_CASE("an unknown top device is an invalid argument naming it") {
    try {
        (void)walkBlockStack(fixturePaths("seed-stack"), {DeviceNumber{8, 99}});
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidArgument);
        CHECK_THAT(e.what(), thintrim::test::Contains("8:99"));
    }
}

TEST_CASE("device numbers") {
    CHECK(DeviceNumber::parse("252:1") == DeviceNumber{252, 1});
    CHECK(DeviceNumber{8, 17}.toString() == "8:17");
    CHECK(DeviceNumber::fromDev(::makedev(259, 3)) == DeviceNumber{259, 3});
    CHECK(DeviceNumber{259, 3}.toDev() == ::makedev(259, 3));
    CHECK(DeviceNumber{0, 35}.isAnonymous());
    CHECK_FALSE(DeviceNumber{8, 0}.isAnonymous());
    for (const char* bad : {"", "8", "8:", ":1", "a:b", "8:1x", "-1:2", "8:1:2", " 8:1"}) {
        INFO(bad);
        try {
            (void)DeviceNumber::parse(bad);
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::InvalidArgument);
        }
    }
}

TEST_CASE("layer kind names") {
    CHECK(layerKindName(LayerKind::Disk) == "disk");
    CHECK(layerKindName(LayerKind::Partition) == "partition");
    CHECK(layerKindName(LayerKind::Loop) == "loop");
    CHECK(layerKindName(LayerKind::Md) == "md");
    CHECK(layerKindName(LayerKind::Crypt) == "crypt");
    CHECK(layerKindName(LayerKind::Lvm) == "lvm");
    CHECK(layerKindName(LayerKind::Thin) == "thin");
    CHECK(layerKindName(LayerKind::Dm) == "dm");
}

TEST_CASE("a btrfs member without discard leaves the filesystem eligible but is named") {
    FakeSysfs sysfs;
    sysfs.scsiDisk("sda", "8:0", 1073741824, "unmap");
    sysfs.scsiDisk("sdb", "8:16", 0, "full");
    BlockStack stack = walkBlockStack(sysfs.paths(), {DeviceNumber{8, 0}, DeviceNumber{8, 16}});
    CHECK(stack.verdict.eligible);
    CHECK(stack.verdict.culprits.empty());
    CHECK_THAT(
        stack.verdict.reason,
        thintrim::test::StartsWith("discards pass through 1 layer down to sda, but member sdb "
                                   "drops them") &&
            thintrim::test::Contains("SCSI provisioning_mode=full"));
}

TEST_CASE("a thin pool that ignores discards names lvchange with the VG/LV") {
    FakeSysfs sysfs;
    sysfs.scsiDisk("sda", "8:0", 1073741824, "unmap");
    // A VG named "my-vg": LVM doubles the '-' inside names.
    sysfs.dm("dm-0", "252:0", 1073741824, "my--vg-pool_tdata", "LVM-aaaa-tdata");
    sysfs.dm("dm-1", "252:1", 0, "my--vg-pool-tpool", "LVM-aaab-tpool");
    sysfs.dm("dm-2", "252:2", 0, "my--vg-thin--lv", "LVM-aaac");
    sysfs.slave("virtual/block/dm-0", "pci0000:00/host0/0:0:0:0/block/sda");
    sysfs.slave("virtual/block/dm-1", "virtual/block/dm-0");
    sysfs.slave("virtual/block/dm-2", "virtual/block/dm-1");

    BlockStack stack = walkBlockStack(sysfs.paths(), {DeviceNumber{252, 2}});
    REQUIRE(stack.layers.size() == 4);
    CHECK(stack.layers[0].kind == LayerKind::Thin);
    CHECK(stack.layers[1].kind == LayerKind::Thin);
    CHECK(stack.layers[2].kind == LayerKind::Lvm);
    CHECK(culpritNames(stack) == std::vector<std::string>{"dm-1"});
    CHECK(stack.verdict.reason == "thin pool my-vg/pool (dm-1) drops discards: let it pass them "
                                  "down with `lvchange --discards passdown my-vg/pool`");
    CHECK(deviceNumberOf(sysfs.paths(), "/dev/my-vg/thin-lv") == DeviceNumber{252, 2});
}

TEST_CASE("a loop device that drops discards, and other dm targets") {
    FakeSysfs sysfs;
    sysfs.device("virtual/block/loop3", "7:3", 0);
    sysfs.file(sysfs.sys("devices/virtual/block/loop3/loop/backing_file"), "/srv/disk.img");
    BlockStack loop = walkBlockStack(sysfs.paths(), {DeviceNumber{7, 3}});
    CHECK(loop.layers.at(0).kind == LayerKind::Loop);
    CHECK(loop.verdict.reason == "loop device loop3 has discards disabled "
                                 "(queue/discard_max_bytes=0) or its backing file's filesystem "
                                 "cannot punch holes");

    sysfs.device("virtual/block/vda", "254:0", 2147483136);
    sysfs.dm("dm-5", "252:5", 0, "cache0", "");
    sysfs.slave("virtual/block/dm-5", "virtual/block/vda");
    BlockStack dm = walkBlockStack(sysfs.paths(), {DeviceNumber{252, 5}});
    CHECK(dm.layers.at(0).kind == LayerKind::Dm);
    CHECK(dm.layers.at(1).detail == "virtio-blk disk");
    CHECK_THAT(dm.verdict.reason,
               thintrim::test::StartsWith("device-mapper device cache0 (dm-5)") &&
                   thintrim::test::Contains("dmsetup table cache0"));
}

TEST_CASE("an md mirror with one no-discard member blames the member's disk") {
    FakeSysfs sysfs;
    sysfs.scsiDisk("sda", "8:0", 1073741824, "unmap");
    sysfs.scsiDisk("sdb", "8:16", 0, "full");
    sysfs.partition("pci0000:00/host0/0:0:0:0/block/sda", "sda1", "8:1", 1);
    sysfs.partition("pci0000:00/host0/0:0:16:0/block/sdb", "sdb1", "8:17", 1);
    sysfs.device("virtual/block/md0", "9:0", 0);
    sysfs.file(sysfs.sys("devices/virtual/block/md0/md/level"), "raid1");
    // Created in reverse order: the walk must sort slaves by name.
    sysfs.slave("virtual/block/md0", "pci0000:00/host0/0:0:16:0/block/sdb/sdb1");
    sysfs.slave("virtual/block/md0", "pci0000:00/host0/0:0:0:0/block/sda/sda1");

    BlockStack stack = walkBlockStack(sysfs.paths(), {DeviceNumber{9, 0}});
    std::vector<std::string> names;
    for (const Layer& layer : stack.layers)
        names.push_back(layer.name);
    CHECK(names == std::vector<std::string>{"md0", "sda1", "sda", "sdb1", "sdb"});
    CHECK(stack.layers[1].detail == "partition 1 of sda");
    CHECK(stack.layers[1].discardMaxBytes == 1073741824);
    CHECK(stack.layers[3].discardMaxBytes == 0);
    CHECK(culpritNames(stack) == std::vector<std::string>{"sdb"});
    CHECK_THAT(stack.verdict.reason,
               thintrim::test::StartsWith("the virtual disk sdb") &&
                   thintrim::test::Contains("; md raid1 array md0 spans sdb and sda1"));
}

TEST_CASE("missing sysfs files read as zero and loops in the tree end") {
    FakeSysfs sysfs;
    sysfs.dm("dm-0", "252:0", 0, "a", "");
    sysfs.dm("dm-1", "252:1", 1, "b", "");
    fs::remove_all(sysfs.sys("devices/virtual/block/dm-1/queue"));
    fs::remove(sysfs.sys("devices/virtual/block/dm-1/size"));
    sysfs.slave("virtual/block/dm-0", "virtual/block/dm-1");
    sysfs.slave("virtual/block/dm-1", "virtual/block/dm-0");

    BlockStack stack = walkBlockStack(sysfs.paths(), {DeviceNumber{252, 0}});
    REQUIRE(stack.layers.size() == 2);
    CHECK(stack.layers[1].discardMaxBytes == 0);
    CHECK(stack.layers[1].discardGranularity == 0);
    CHECK(stack.layers[1].sizeBytes == 0);
    CHECK(culpritNames(stack) == std::vector<std::string>{"dm-1"});
}
