// SPDX-License-Identifier: GPL-2.0-or-later
#include "audit.h"
#include "catch.h"
#include "render.h"
#include "test_support.h"

#include <algorithm>

using namespace thintrim;
using namespace thintrim::host;
using thintrim::host::test::dataDir;
using thintrim::host::test::readData;

namespace {

AuditReport fixtureAudit(std::string onlyVm = {}) {
    AuditRoots roots;
    roots.pveDir = dataDir() / "pve";
    roots.libvirtDir = dataDir() / "libvirt";
    roots.procRoot = dataDir() / "proc";
    roots.onlyVm = std::move(onlyVm);
    return runAudit(roots, ImageProbe{}, {});
}

const AuditedDisk& find(const AuditReport& report, std::string_view vm, std::string_view disk) {
    for (const AuditedDisk& candidate : report.disks) {
        if (candidate.vm == vm && candidate.disk == disk)
            return candidate;
    }
    FAIL("no disk " << vm << " " << disk);
    throw std::logic_error("unreachable");
}

bool hasFinding(const AuditedDisk& disk, std::string_view message, std::string_view fix = {}) {
    for (const HostFinding& finding : disk.findings) {
        if (finding.message.find(message) != std::string::npos &&
            finding.fix.find(fix) != std::string::npos)
            return true;
    }
    return false;
}

} // namespace

TEST_CASE("audit: Proxmox disks with and without discard, and their fixes") {
    const AuditReport report = fixtureAudit();
    CHECK(report.problems.empty());
    const AuditedDisk& withDiscard = find(report, "100", "scsi0");
    CHECK(withDiscard.source == "proxmox");
    CHECK(withDiscard.vmName == "web");
    CHECK(withDiscard.effective().discard == DiscardMode::Unmap);
    CHECK(!withDiscard.running);
    CHECK(!hasFinding(withDiscard, "discard is off"));

    const AuditedDisk& without = find(report, "100", "scsi1");
    CHECK(without.effective().discard == DiscardMode::Ignore);
    CHECK(hasFinding(without, "discard is off",
                     "qm set 100 --scsi1 local-lvm:vm-100-disk-1,iothread=1,size=100G,discard=on"));
    CHECK(hasFinding(without, "discard is off", "qm shutdown 100 && qm start 100"));

    const AuditedDisk& virtioBlk = find(report, "100", "virtio0");
    CHECK(virtioBlk.effective().bus == "virtio");
    CHECK(virtioBlk.effective().format == "qcow2");
    CHECK(hasFinding(virtioBlk, "discard is off", "qm set 100 --virtio0"));

    const AuditedDisk& sata = find(report, "100", "sata0");
    CHECK(sata.effective().bus == "sata");
    CHECK(sata.storage.type == "zfspool");

    const AuditedDisk& lsi = find(report, "101", "scsi0");
    CHECK(hasFinding(lsi, "SCSI controller lsi53c895a", "qm set 101 --scsihw virtio-scsi-single"));
    CHECK(hasFinding(find(report, "101", "ide0"), "of type rbd"));
}

TEST_CASE("audit: a running VM's settings win, and an unapplied change is a finding") {
    const AuditReport report = fixtureAudit("102");
    REQUIRE(report.disks.size() == 2);
    const AuditedDisk& scsi0 = find(report, "102", "scsi0");
    CHECK(scsi0.pid == 2102);
    REQUIRE(scsi0.running);
    REQUIRE(scsi0.pending);
    CHECK(scsi0.pending->discard == DiscardMode::Unmap);
    CHECK(scsi0.effective().discard == DiscardMode::Ignore);
    CHECK(hasFinding(scsi0, "pending change", "qm shutdown 102 && qm start 102"));
    CHECK(scsi0.qmpSocket == "/var/run/qemu-server/102.qmp");
    CHECK(scsi0.guestAgentSocket == "/var/run/qemu-server/102.qga");
}

TEST_CASE("audit: the configuration says on, QEMU still runs with discard off") {
    PveVmConfig config = parsePveVmConfig("scsi0: local-lvm:vm-7-disk-0,discard=on\n", "7");
    QemuProcess process;
    process.pid = 70;
    process.vmid = "7";
    QemuDisk running;
    running.name = "scsi0";
    running.driveId = "drive-scsi0";
    running.settings = {"/dev/pve/vm-7-disk-0", "raw", "scsi", "virtio-scsi-pci",
                        DiscardMode::Ignore,    "on"};
    process.disks.push_back(running);
    const auto storages = parsePveStorageConfig(readData("pve/storage.cfg"), "s");
    auto disks = collectDisks({{config, "7.conf"}}, storages, {}, {process});
    REQUIRE(disks.size() == 1);
    computeFindings(disks[0]);
    CHECK(hasFinding(disks[0], "configuration says discard=on: the change is not applied",
                     "qm shutdown 7 && qm start 7"));
}

TEST_CASE("audit: libvirt disks matched to their QEMU by image, with the XML to add") {
    const AuditReport report = fixtureAudit();
    const AuditedDisk& vda = find(report, "web2", "vda");
    CHECK(vda.source == "libvirt");
    CHECK(vda.pid == 3001);
    CHECK(vda.runningDriveId == "libvirt-2-format");
    CHECK(vda.findings.size() == 1); // only: the image is not on this machine
    const AuditedDisk& sda = find(report, "web2", "sda");
    CHECK(sda.effective().discard == DiscardMode::Ignore);
    CHECK(hasFinding(sda, "QEMU runs with discard=ignore",
                     "virsh edit web2: in the <disk> with <target dev='sda'/>, set <driver "
                     "name='qemu' type='qcow2' discard='unmap' detect_zeroes='unmap'/>"));
    const AuditedDisk& vdb = find(report, "db2", "vdb");
    CHECK(!vdb.running);
    CHECK(hasFinding(vdb, "discard is off", "type='raw' discard='unmap'"));
}

TEST_CASE("audit: plain QEMU disks get the option to add") {
    const AuditReport report = fixtureAudit();
    const AuditedDisk& raw = find(report, "pid 15759", "virtio1");
    CHECK(raw.source == "qemu");
    CHECK(hasFinding(raw, "discard is off",
                     "add discard=unmap,detect-zeroes=unmap to -drive "
                     "id=drive-virtio1"));
    AuditedDisk blockdev = find(report, "pid 15759", "virtio-disk2");
    blockdev.running->discard = DiscardMode::Ignore;
    computeFindings(blockdev);
    CHECK(hasFinding(blockdev, "discard is off",
                     "add \"discard\":\"unmap\" to every -blockdev node of libvirt-1-format"));
}

TEST_CASE("findings: qcow2 snapshots and backing files, thin pools, old virtio-blk") {
    AuditedDisk disk;
    disk.source = "libvirt";
    disk.vm = "vm";
    disk.disk = "vda";
    disk.configured = DiskSettings{"/i.qcow2", "qcow2", "virtio", "", DiscardMode::Unmap, "unmap"};
    disk.usage.qcow2 = Qcow2Header{3, 1 << 30, 2, "/base.qcow2"};
    disk.qemuVersion = "3.1.0";
    computeFindings(disk);
    CHECK(hasFinding(disk, "2 internal qcow2 snapshot(s)", "virsh snapshot-delete vm"));
    CHECK(hasFinding(disk, "backed by /base.qcow2", "virsh blockpull vm vda"));
    CHECK(hasFinding(disk, "virtio-blk passes discards from QEMU 4.0 on"));

    AuditedDisk thin;
    thin.source = "proxmox";
    thin.vm = "100";
    thin.disk = "scsi0";
    thin.storage = {"local-lvm", "lvmthin", "pve/data"};
    thin.configured = DiskSettings{"/dev/pve/vm-100-disk-0", "raw",  "scsi", "virtio-scsi-pci",
                                   DiscardMode::Unmap,       "unmap"};
    thin.usage.kind = "thin LV";
    thin.usage.thinPool = "pve/data";
    thin.usage.thinPoolDiscards = ThinPoolDiscards::NoPassdown;
    thin.vmSnapshots = {"before"};
    computeFindings(thin);
    CHECK(hasFinding(thin, "nopassdown", "lvchange --discards passdown pve/data"));
    CHECK(hasFinding(thin, "1 snapshot(s) (before)", "qm delsnapshot 100 NAME"));
    thin.usage.thinPoolDiscards = ThinPoolDiscards::Ignore;
    computeFindings(thin);
    CHECK(hasFinding(thin, "thin pool pve/data ignores discards",
                     "lvchange --discards passdown pve/data"));
    CHECK(std::any_of(thin.findings.begin(), thin.findings.end(),
                      [](const HostFinding& f) { return f.severity == FindingSeverity::Error; }));
}

TEST_CASE("QMP counters captured from QEMU 7.2, matched to their disks") {
    const auto block = nlohmann::json::parse(readData("qmp-query-block.json"))["return"];
    const auto blockstats = nlohmann::json::parse(readData("qmp-query-blockstats.json"))["return"];
    const auto stats = parseUnmapStats(block, blockstats);
    REQUIRE(stats.size() == 3);
    CHECK(stats[0].device == "drive-scsi0");
    CHECK(stats[0].image == "/tmp/cap/vm-100-disk-0.qcow2");
    CHECK(stats[2].nodeName == "libvirt-1-format");
    const AuditReport report = fixtureAudit();
    for (const auto& name : {"scsi0", "virtio1", "virtio-disk2"}) {
        INFO(name);
        const auto matched = matchUnmapStats(find(report, "pid 15759", name), stats);
        REQUIRE(matched);
        CHECK(matched->image == find(report, "pid 15759", name).image());
    }
}

TEST_CASE("audit JSON: the stable schema") {
    const auto json = auditJson(fixtureAudit());
    CHECK(json["schema"] == 1);
    REQUIRE(json["disks"].is_array());
    for (const auto& disk : json["disks"]) {
        for (const char* key : {"vm", "disk", "image", "bus", "discard", "allocated_bytes",
                                "size_bytes", "findings", "detect_zeroes", "format"}) {
            INFO(key);
            CHECK(disk.contains(key));
        }
        for (const auto& finding : disk["findings"]) {
            CHECK(finding["message"].is_string());
            CHECK(finding["fix"].is_string());
            CHECK(finding["severity"].is_string());
        }
    }
}

TEST_CASE("audit metrics: Prometheus text with escaped labels") {
    AuditReport report;
    AuditedDisk disk;
    disk.vm = "a\"b";
    disk.disk = "vda";
    disk.configured = DiskSettings{"/x\\y\n", "raw", "virtio", "", DiscardMode::Unmap, ""};
    disk.usage.allocatedBytes = 4096;
    report.disks.push_back(disk);
    const std::string text = auditMetrics(report);
    CHECK_THAT(text, thintrim::test::Contains("# TYPE thintrim_host_disk_discard gauge"));
    CHECK_THAT(text, thintrim::test::Contains(
                         "thintrim_host_disk_allocated_bytes{vm=\"a\\\"b\",disk=\"vda\",image=\"/"
                         "x\\\\y\\n\"} 4096"));
    CHECK_THAT(text, !thintrim::test::Contains("thintrim_host_disk_size_bytes{"));
}

TEST_CASE("audit: a device that hides discard from the guest is named with its fix") {
    // The disks vm-disk-kinds adds: the drive passes discards, the device
    // does not offer them to the guest.
    const auto process = parseQemuCommandLine(
        4242,
        {"qemu-system-x86_64", "-name", "kinds", "-drive",
         "file=/v/nodisc-vblk.qcow2,if=none,id=nodisc-vblk,format=qcow2,discard=unmap", "-device",
         "virtio-blk-pci,drive=nodisc-vblk,serial=nodisc-vblk,discard=off", "-device",
         "virtio-scsi-pci,id=scsi0", "-drive",
         "file=/v/nodisc-scsi.qcow2,if=none,id=nodisc-scsi,format=qcow2,discard=unmap", "-device",
         "scsi-hd,bus=scsi0.0,scsi-id=3,lun=0,drive=nodisc-scsi,serial=nodisc-scsi,"
         "discard_granularity=0",
         "-drive", "file=/v/good.qcow2,if=none,id=good,format=qcow2,discard=unmap", "-device",
         "virtio-blk-pci,drive=good,serial=good,discard=on"});
    REQUIRE(process);
    REQUIRE(process->disks.size() == 3);
    CHECK(process->disks[0].deviceDiscardOff == "discard=off");
    CHECK(process->disks[0].serial == "nodisc-vblk");
    CHECK(process->disks[1].deviceDiscardOff == "discard_granularity=0");
    CHECK(process->disks[2].deviceDiscardOff.empty());

    auto disks = collectDisks({}, {}, {}, {*process});
    REQUIRE(disks.size() == 3);
    for (AuditedDisk& disk : disks)
        computeFindings(disk);
    CHECK(!disks[0].passesDiscards());
    CHECK(hasFinding(disks[0], "has discard=off: the guest sees a disk without discard support",
                     "remove discard=off from the -device of nodisc-vblk"));
    CHECK(hasFinding(disks[1], "has discard_granularity=0",
                     "remove discard_granularity=0 from the -device of nodisc-scsi"));
    CHECK(disks[2].passesDiscards());
    CHECK(disks[2].findings.empty());
    const auto json = diskJson(disks[1]);
    CHECK(json["device_discard_off"] == "discard_granularity=0");
    CHECK(json["serial"] == "nodisc-scsi");
    CHECK_THAT(auditMetrics({disks, {}}),
               thintrim::test::Contains("thintrim_host_disk_discard{vm=\"pid 4242\",disk=\"nodisc-"
                                        "scsi\",image=\"/v/nodisc-scsi.qcow2\"} 0"));
}
