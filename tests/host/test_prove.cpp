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
    proof.before = {allocatedBefore, unmapBefore};
    proof.after = {allocatedAfter, unmapAfter};
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
