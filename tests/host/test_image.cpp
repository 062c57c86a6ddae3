// SPDX-License-Identifier: GPL-2.0-or-later
#include "../unit/temp_dir.h"
#include "audit.h"
#include "catch.h"
#include "image.h"
#include "stack/block_stack.h"

#include <fstream>

using namespace thintrim;
using namespace thintrim::host;

namespace {

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

// A sysfs with a thin LV (253:5, pve-vm--100--disk--0) in pool
// pve-data-tpool (253:2), as LVM names them.
struct ThinFixture {
    thintrim::test::TempDir root;
    ThinPoolDiscards poolDiscards = ThinPoolDiscards::Passdown;

    ThinFixture() {
        writeFile(root.path() / "sys/dev/block/253:5/size", "67108864\n"); // 32 GiB
        writeFile(root.path() / "sys/dev/block/253:5/dm/name", "pve-vm--100--disk--0\n");
        writeFile(root.path() / "sys/dev/block/253:2/dm/name", "pve-data-tpool\n");
        writeFile(root.path() / "sys/dev/block/230:0/size", "33554432\n");
    }

    ImageProbe probe() const {
        ImageProbe probe;
        probe.sysfsRoot = root.path();
        const ThinPoolDiscards discards = poolDiscards;
        probe.dmReader = [discards](const DeviceNumber& device) -> std::optional<DmTableAndStatus> {
            if (device.toString() == "253:5")
                return DmTableAndStatus{{{0, 67108864, "thin", "253:2 1"}},
                                        {{0, 67108864, "thin", "2097152 67108863"}}};
            if (device.toString() == "253:2") {
                std::string features = "0";
                std::string status = "discard_passdown";
                if (discards == ThinPoolDiscards::NoPassdown) {
                    features = "1 no_discard_passdown";
                    status = "no_discard_passdown";
                } else if (discards == ThinPoolDiscards::Ignore) {
                    features = "1 ignore_discard";
                    status = "ignore_discard";
                }
                return DmTableAndStatus{
                    {{0, 1, "thin-pool", "253:0 253:1 128 0 " + features}},
                    {{0, 1, "thin-pool",
                      "1 10/1024 200/4096 - rw " + status + " queue_if_no_space - 1024"}}};
            }
            return std::nullopt;
        };
        return probe;
    }
};

} // namespace

TEST_CASE("thin LVs: mapped bytes from the dm status, the pool and its discards") {
    ThinFixture fixture;
    auto usage = probeBlockImage("/dev/pve/vm-100-disk-0", DeviceNumber{253, 5}, fixture.probe());
    CHECK(usage.kind == "thin LV");
    CHECK(usage.sizeBytes == std::uint64_t{32} << 30);
    CHECK(usage.allocatedBytes == std::uint64_t{1} << 30); // 2097152 sectors
    CHECK(usage.thinPool == "pve/data");
    CHECK(usage.thinPoolDiscards == ThinPoolDiscards::Passdown);

    fixture.poolDiscards = ThinPoolDiscards::NoPassdown;
    usage = probeBlockImage("/dev/pve/vm-100-disk-0", DeviceNumber{253, 5}, fixture.probe());
    CHECK(usage.thinPoolDiscards == ThinPoolDiscards::NoPassdown);

    AuditedDisk disk;
    disk.source = "proxmox";
    disk.vm = "100";
    disk.disk = "scsi0";
    disk.configured = DiskSettings{"/dev/pve/vm-100-disk-0", "raw",  "scsi", "virtio-scsi-pci",
                                   DiscardMode::Unmap,       "unmap"};
    disk.usage = usage;
    computeFindings(disk);
    REQUIRE(disk.findings.size() == 1);
    CHECK(disk.findings[0].message.find("thin pool pve/data does not pass discards down") !=
          std::string::npos);
    CHECK(disk.findings[0].fix == "lvchange --discards passdown pve/data");

    // Without root the tables cannot be read: said, not guessed.
    ImageProbe blind = fixture.probe();
    blind.dmReader = [](const DeviceNumber&) { return std::optional<DmTableAndStatus>(); };
    usage = probeBlockImage("/dev/pve/vm-100-disk-0", DeviceNumber{253, 5}, blind);
    CHECK(usage.kind == "LV");
    CHECK(!usage.allocatedBytes);
    CHECK(usage.note.find("root") != std::string::npos);
}

TEST_CASE("zvols: used and refreservation from zfs get, a thick zvol is a finding") {
    ThinFixture fixture;
    ImageProbe probe = fixture.probe();
    std::vector<std::string> asked;
    probe.runCommand = [&](const std::vector<std::string>& args) -> std::optional<std::string> {
        asked = args;
        return "used\t5368709120\nrefreservation\t17179869184\n";
    };
    const auto usage =
        probeBlockImage("/dev/zvol/rpool/data/vm-100-disk-3", DeviceNumber{230, 0}, probe);
    CHECK(usage.kind == "zvol");
    CHECK(asked.back() == "rpool/data/vm-100-disk-3");
    CHECK(usage.allocatedBytes == std::uint64_t{5} << 30);
    CHECK(usage.reservedBytes == std::uint64_t{16} << 30);
    CHECK(usage.sizeBytes == std::uint64_t{16} << 30);

    AuditedDisk disk;
    disk.source = "proxmox";
    disk.vm = "100";
    disk.disk = "sata0";
    disk.storage = {"local-zfs", "zfspool", ""};
    disk.configured = DiskSettings{
        "/dev/zvol/rpool/data/vm-100-disk-3", "raw", "sata", "", DiscardMode::Unmap, "unmap"};
    disk.usage = usage;
    computeFindings(disk);
    REQUIRE(disk.findings.size() == 1);
    CHECK(disk.findings[0].fix.starts_with("zfs set refreservation=none rpool/data/vm-100-disk-3"));

    probe.runCommand = [](const std::vector<std::string>&) { return std::optional<std::string>(); };
    const auto unknown =
        probeBlockImage("/dev/zvol/rpool/data/vm-100-disk-3", DeviceNumber{230, 0}, probe);
    CHECK(!unknown.allocatedBytes);
    CHECK(unknown.note.find("zfs get") != std::string::npos);
}
