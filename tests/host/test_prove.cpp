// SPDX-License-Identifier: GPL-2.0-or-later
#include "catch.h"
#include "prove.h"
#include "render.h"

using namespace thintrim;
using namespace thintrim::host;

namespace {

DiskProof proofOf(DiscardMode discard, std::optional<std::uint64_t> unmapBefore,
                  std::optional<std::uint64_t> unmapAfter, std::uint64_t allocatedBefore,
                  std::uint64_t allocatedAfter) {
    DiskProof proof;
    proof.disk.disk = "scsi0";
    proof.disk.vm = "100";
    proof.disk.running = DiskSettings{"/i.qcow2", "qcow2", "scsi", "virtio-scsi-pci", discard, ""};
    proof.before = {allocatedBefore, unmapBefore, std::nullopt};
    proof.after = {allocatedAfter, unmapAfter, std::nullopt};
    return proof;
}

} // namespace

TEST_CASE("guest output: thintrim's JSON with receipts, fstrim -av") {
    const auto thintrim = parseThintrimTrimJson(
        R"({"results": [{"mount_point": "/", "result": "success", "trimmed_bytes": 1048576,
            "reached_disk_bytes": 524288}, {"mount_point": "/boot", "trimmed_bytes": 4096,
            "reached_disk_bytes": null}]})");
    REQUIRE(thintrim);
    REQUIRE(thintrim->size() == 2);
    CHECK((*thintrim)[0].reachedDiskBytes == 524288u);
    CHECK(!(*thintrim)[1].reachedDiskBytes);
    GuestTrim trim;
    trim.filesystems = *thintrim;
    CHECK(trim.trimmedBytes() == 1052672);
    CHECK(trim.reachedDiskBytes() == 524288u);
    CHECK(!parseThintrimTrimJson("thintrim: not found"));

    const auto fstrim = parseFstrimOutput("/boot: 230.5 MiB (241700864 bytes) trimmed on "
                                          "/dev/vda1\n/: 7.1 GiB (7623000064 bytes) trimmed on "
                                          "/dev/mapper/vg-root\nfstrim: /mnt: FITRIM failed\n");
    REQUIRE(fstrim.size() == 2);
    CHECK(fstrim[0].mountPoint == "/boot");
    CHECK(fstrim[1].trimmedBytes == 7623000064u);
}

TEST_CASE("verdicts name the layer where the space stopped") {
    auto none = proofOf(DiscardMode::Unmap, 0, 1 << 20, 10 << 20, 9 << 20);
    judge(none, 1 << 20);
    CHECK(none.verdict == StopLayer::None);
    CHECK(none.releasedBytes() == 1u << 20);

    auto guest = proofOf(DiscardMode::Unmap, 5, 5, 10 << 20, 10 << 20);
    judge(guest, 1 << 30);
    CHECK(guest.verdict == StopLayer::GuestStack);
    auto nothing = proofOf(DiscardMode::Unmap, 5, 5, 10 << 20, 10 << 20);
    judge(nothing, 0);
    CHECK(nothing.verdict == StopLayer::Inconclusive);

    auto ignored = proofOf(DiscardMode::Ignore, 0, 1 << 20, 10 << 20, 10 << 20);
    judge(ignored, 1 << 20);
    CHECK(ignored.verdict == StopLayer::QemuIgnore);
    CHECK_THAT(ignored.explanation, thintrim::test::Contains("discard=ignore"));

    auto pinned = proofOf(DiscardMode::Unmap, 0, 1 << 20, 10 << 20, 10 << 20);
    pinned.disk.usage.qcow2 = Qcow2Header{3, 1 << 30, 1, ""};
    judge(pinned, 1 << 20);
    CHECK(pinned.verdict == StopLayer::Qcow2Pinned);

    auto pool = proofOf(DiscardMode::Unmap, 0, 1 << 20, 10 << 20, 10 << 20);
    pool.disk.usage.thinPoolDiscards = ThinPoolDiscards::Ignore;
    judge(pool, 1 << 20);
    CHECK(pool.verdict == StopLayer::ThinPool);

    auto below = proofOf(DiscardMode::Unmap, 0, 1 << 20, 10 << 20, 10 << 20);
    judge(below, 1 << 20);
    CHECK(below.verdict == StopLayer::BelowQemu);

    auto noCounters = proofOf(DiscardMode::Unmap, std::nullopt, std::nullopt, 10 << 20, 10 << 20);
    judge(noCounters, 1 << 20);
    CHECK(noCounters.verdict == StopLayer::Inconclusive);
}

TEST_CASE("prove JSON and metrics") {
    ProveReport report;
    report.vm = "100";
    report.guest.command = "fstrim -av";
    report.guest.exitCode = 0;
    report.guest.filesystems = {{"/", 1 << 20, std::nullopt}};
    report.disks.push_back(proofOf(DiscardMode::Ignore, 0, 1 << 20, 10 << 20, 10 << 20));
    judge(report.disks.back(), 1 << 20);
    const auto json = proveJson(report);
    CHECK(json["guest"]["trimmed_bytes"] == 1 << 20);
    CHECK(json["disks"][0]["verdict"] == "qemu discard=ignore");
    CHECK(json["disks"][0]["qemu_received_bytes"] == 1 << 20);
    CHECK(json["disks"][0]["released_bytes"] == 0);
    CHECK_THAT(
        proveMetrics(report),
        thintrim::test::Contains("thintrim_host_prove_verdict{vm=\"100\",disk=\"scsi0\",image=\"/"
                                 "i.qcow2\",layer=\"qemu discard=ignore\"} 1"));
}

TEST_CASE("guest-get-fsinfo: each filesystem's disks, matched to host disks by serial") {
    // The shape of qemu-guest-agent 7.2's answer (one scsi-hd with
    // serial=trimdata1, one virtio-blk with serial=trimvblk0, one scsi-hd
    // on -drive id=drive-scsi2 without serial, an LV over two disks).
    const auto fsinfo = parseGuestFsInfo(nlohmann::json::parse(R"([
        {"name": "sdb", "mountpoint": "/mnt/a", "type": "ext4", "disk": [
            {"serial": "0QEMU_QEMU_HARDDISK_trimdata1", "bus-type": "scsi", "bus": 0,
             "target": 1, "unit": 0, "dev": "/dev/sdb",
             "pci-controller": {"domain": 0, "bus": 0, "slot": 4, "function": 0}}]},
        {"name": "vdb", "mountpoint": "/mnt/b", "type": "xfs", "disk": [
            {"serial": "trimvblk0", "bus-type": "virtio", "dev": "/dev/vdb"}]},
        {"name": "sdc", "mountpoint": "/mnt/c", "type": "ext4", "disk": [
            {"serial": "0QEMU_QEMU_HARDDISK_drive-scsi2", "bus-type": "scsi", "dev": "/dev/sdc"}]},
        {"name": "dm-0", "mountpoint": "/srv", "type": "ext4", "disk": [
            {"serial": "trimvblk0", "bus-type": "virtio", "dev": "/dev/vdb"},
            {"serial": "0QEMU_QEMU_HARDDISK_trimdata1", "bus-type": "scsi", "dev": "/dev/sdb"}]},
        {"name": "vda1", "mountpoint": "/", "type": "ext4", "disk": [
            {"bus-type": "virtio", "dev": "/dev/vda"}]},
        "not an object"])"));
    REQUIRE(fsinfo.size() == 5);
    CHECK(fsinfo[0].mountPoint == "/mnt/a");
    CHECK(fsinfo[3].disks.size() == 2);

    auto scsiDisk = proofOf(DiscardMode::Unmap, 0, 0, 10 << 20, 10 << 20);
    scsiDisk.disk.serial = "trimdata1";
    auto virtioDisk = proofOf(DiscardMode::Unmap, 0, 0, 10 << 20, 10 << 20);
    virtioDisk.disk.disk = "virtio1";
    virtioDisk.disk.running->bus = "virtio";
    virtioDisk.disk.serial = "trimvblk0";
    auto driveIdDisk = proofOf(DiscardMode::Unmap, 0, 0, 10 << 20, 10 << 20);
    driveIdDisk.disk.runningDriveId = "drive-scsi2";
    CHECK(isSameDisk(fsinfo[0].disks[0], scsiDisk.disk));
    CHECK(!isSameDisk(fsinfo[0].disks[0], virtioDisk.disk));
    CHECK(isSameDisk(fsinfo[1].disks[0], virtioDisk.disk));
    CHECK(isSameDisk(fsinfo[2].disks[0], driveIdDisk.disk));
    CHECK(!isSameDisk(fsinfo[4].disks[0], virtioDisk.disk)); // no serial, no match
    // "drive-scsi2" is not "drive-scsi22"; a 24-byte serial is cut at 20.
    driveIdDisk.disk.runningDriveId = "drive-scsi22";
    CHECK(!isSameDisk(fsinfo[2].disks[0], driveIdDisk.disk));
    virtioDisk.disk.serial = "trimvblk0-0123456789abc";
    CHECK(isSameDisk({"trimvblk0-0123456789", "virtio", "/dev/vdb"}, virtioDisk.disk));
    virtioDisk.disk.serial = "trimvblk0";
    driveIdDisk.disk.runningDriveId = "drive-scsi2";

    GuestTrim trim;
    trim.filesystems = {
        {"/mnt/a", 100, std::nullopt}, {"/mnt/b", 0, std::nullopt}, {"/srv", 7, std::nullopt}};
    std::vector<DiskProof> proofs{scsiDisk, virtioDisk, driveIdDisk};
    CHECK(placeGuestTrims(proofs, trim, fsinfo) == 0);
    CHECK(proofs[0].guestTrimmedBytes == 107u);
    CHECK(proofs[0].guestMountPoints == std::vector<std::string>{"/mnt/a", "/srv"});
    CHECK(proofs[1].guestTrimmedBytes == 7u);
    CHECK(proofs[2].guestTrimmedBytes == 0u); // /mnt/c was not trimmed
    // A trimmed filesystem on a disk without serial: the disks with nothing
    // placed on them are unknown, not "nothing trimmed".
    trim.filesystems.push_back({"/", 50, std::nullopt});
    std::vector<DiskProof> unplaced{scsiDisk, driveIdDisk};
    CHECK(placeGuestTrims(unplaced, trim, fsinfo) == 50);
    CHECK(unplaced[0].guestTrimmedBytes == 107u);
    CHECK(!unplaced[1].guestTrimmedBytes);
    // With one disk that shows no serial (a virtio-blk root disk without
    // serial=), the guest's serial-less disk is that one; with two, neither.
    auto root = proofOf(DiscardMode::Unmap, 0, 0, 10 << 20, 10 << 20);
    root.disk.disk = "root";
    root.disk.running->bus = "virtio";
    std::vector<DiskProof> withRoot{scsiDisk, driveIdDisk, root};
    CHECK(placeGuestTrims(withRoot, trim, fsinfo) == 0);
    CHECK(withRoot[2].guestTrimmedBytes == 50u);
    CHECK(withRoot[1].guestTrimmedBytes == 0u);
    std::vector<DiskProof> twoRoots{scsiDisk, root, root};
    CHECK(placeGuestTrims(twoRoots, trim, fsinfo) == 50);
    CHECK(!twoRoots[1].guestTrimmedBytes);
}

TEST_CASE("verdicts per disk: nothing trimmed on it, or trimmed there and lost in the guest") {
    auto idle = proofOf(DiscardMode::Ignore, 0, 0, 10 << 20, 10 << 20);
    idle.guestTrimmedBytes = 0;
    judge(idle, 1 << 30); // the guest trimmed elsewhere
    CHECK(idle.verdict == StopLayer::NothingTrimmed);
    CHECK(stopLayerName(idle.verdict) == "nothing trimmed");
    CHECK_THAT(idle.explanation, thintrim::test::Contains("trimmed no filesystem on this disk"));

    auto offDevice = proofOf(DiscardMode::Unmap, 0, 0, 10 << 20, 10 << 20);
    offDevice.disk.deviceDiscardOff = "discard=off";
    offDevice.guestTrimmedBytes = 0;
    offDevice.guestMountPoints = {"/mnt/x"};
    judge(offDevice, 1 << 30);
    CHECK(offDevice.verdict == StopLayer::NothingTrimmed);
    CHECK_THAT(offDevice.explanation, thintrim::test::Contains("its device has discard=off"));

    auto lost = proofOf(DiscardMode::Unmap, 5, 5, 10 << 20, 10 << 20);
    lost.guestTrimmedBytes = 1 << 20;
    lost.guestMountPoints = {"/mnt/a"};
    judge(lost, 1 << 30);
    CHECK(lost.verdict == StopLayer::GuestStack);
    CHECK_THAT(lost.explanation, thintrim::test::Contains("1.0 MiB on this disk (/mnt/a)"));
}

TEST_CASE("virtio-blk: QEMU does not count its discards, the allocation decides") {
    auto virtio = [](DiscardMode discard, std::uint64_t allocatedAfter) {
        auto proof = proofOf(discard, 7, 7, 10 << 20, allocatedAfter);
        proof.disk.running->bus = "virtio";
        proof.disk.running->controller.clear();
        proof.guestTrimmedBytes = 1 << 20;
        judge(proof, 1 << 20);
        return proof;
    };
    const auto freed = virtio(DiscardMode::Unmap, 9 << 20);
    CHECK(freed.verdict == StopLayer::None);
    CHECK(!freed.qemuCountsDiscards());
    CHECK(!freed.qemuReceivedBytes());
    CHECK_THAT(freed.explanation, thintrim::test::Contains("does not count virtio-blk discards"));

    const auto ignored = virtio(DiscardMode::Ignore, 10 << 20);
    CHECK(ignored.verdict == StopLayer::QemuIgnore);
    CHECK_THAT(ignored.explanation, thintrim::test::Contains("discard=ignore"));

    const auto unknown = virtio(DiscardMode::Unmap, 10 << 20);
    CHECK(unknown.verdict == StopLayer::Inconclusive);
    CHECK_THAT(unknown.explanation, thintrim::test::Contains("cannot be told apart"));

    // A QEMU that does count them is believed.
    auto counted = proofOf(DiscardMode::Unmap, 0, 1 << 20, 10 << 20, 10 << 20);
    counted.disk.running->bus = "virtio";
    CHECK(counted.qemuCountsDiscards());
    judge(counted, 1 << 20);
    CHECK(counted.verdict == StopLayer::BelowQemu);
}

TEST_CASE("prove JSON: per-disk guest trims and QEMU's discard operations") {
    ProveReport report;
    report.vm = "100";
    report.guest.command = "thintrim trim --all --json";
    report.guest.exitCode = 0;
    report.guest.filesystems = {{"/mnt/a", 1 << 20, 1 << 20}};
    auto proof = proofOf(DiscardMode::Unmap, 0, 1 << 20, 10 << 20, 9 << 20);
    proof.before.unmapOperations = 3;
    proof.after.unmapOperations = 11;
    proof.guestTrimmedBytes = 1 << 20;
    proof.guestMountPoints = {"/mnt/a"};
    judge(proof, 1 << 20);
    report.disks.push_back(proof);
    const auto json = proveJson(report);
    CHECK(json["disks"][0]["qemu_received_operations"] == 8);
    CHECK(json["disks"][0]["guest_trimmed_bytes"] == 1 << 20);
    CHECK(json["disks"][0]["guest_mount_points"] == nlohmann::json::array({"/mnt/a"}));
    CHECK(json["disks"][0]["qemu_counts_discards"] == true);
    CHECK(json["guest"]["fsinfo_error"].is_null());
    CHECK(json["guest"]["unplaced_trimmed_bytes"] == 0);
}
