// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"
#include "catch.h"
#include "test_support.h"
#include "vm_config.h"

using namespace thintrim;
using namespace thintrim::host;
using thintrim::host::test::readData;

TEST_CASE("storage.cfg: sections, properties and flags") {
    const auto storages = parsePveStorageConfig(readData("pve/storage.cfg"), "storage.cfg");
    REQUIRE(storages.size() == 4);
    CHECK(storages[0].type == "dir");
    CHECK(storages[0].id == "local");
    CHECK(storages[0].properties.at("path") == "/var/lib/vz");
    CHECK(storages[1].properties.at("vgname") == "pve");
    CHECK(storages[2].properties.at("sparse") == "1");
    CHECK(storages[3].type == "rbd");
    CHECK_THROWS_AS(parsePveStorageConfig("\tpath /x\n", "s"), Error);
}

TEST_CASE("Proxmox volumes resolve to what QEMU opens") {
    const auto storages = parsePveStorageConfig(readData("pve/storage.cfg"), "storage.cfg");
    auto dir = resolvePveVolume(storages, "local:100/vm-100-disk-2.qcow2");
    CHECK(dir.path == "/var/lib/vz/images/100/vm-100-disk-2.qcow2");
    CHECK(dir.format == "qcow2");
    CHECK(dir.storage.type == "dir");
    auto clone =
        resolvePveVolume(storages, "local:100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2");
    CHECK(clone.path == "/var/lib/vz/images/101/vm-101-disk-0.qcow2");
    auto thin = resolvePveVolume(storages, "local-lvm:vm-100-disk-0");
    CHECK(thin.path == "/dev/pve/vm-100-disk-0");
    CHECK(thin.format == "raw");
    CHECK(thin.storage.thinPool == "pve/data");
    auto thinClone = resolvePveVolume(storages, "local-lvm:base-100-disk-0/vm-101-disk-0");
    CHECK(thinClone.path == "/dev/pve/vm-101-disk-0");
    CHECK(resolvePveVolume(storages, "local-zfs:vm-100-disk-3").path ==
          "/dev/zvol/rpool/data/vm-100-disk-3");
    auto rbd = resolvePveVolume(storages, "ceph-vm:vm-101-disk-1");
    CHECK(rbd.storage.type == "rbd");
    CHECK(rbd.path == "rbd:vms/vm-101-disk-1");
    CHECK(resolvePveVolume(storages, "nosuch:vm-1-disk-0").storage.type == "unknown");
    auto absolute = resolvePveVolume(storages, "/dev/disk/by-id/ata-X");
    CHECK(absolute.path == "/dev/disk/by-id/ata-X");
    CHECK(absolute.storage.type == "block");
}

TEST_CASE("qemu-server configurations: disks, controller, snapshots, pending changes") {
    const auto web = parsePveVmConfig(readData("pve/qemu-server/100.conf"), "100");
    CHECK(web.name == "web");
    CHECK(web.scsihw == "virtio-scsi-single");
    REQUIRE(web.drives.size() == 4); // ide2 is a CD-ROM, efidisk0 is not a guest disk
    CHECK(web.drives[0].key == "scsi0");
    CHECK(web.drives[0].volume == "local-lvm:vm-100-disk-0");
    CHECK(web.drives[0].option("discard") == "on");
    CHECK(!web.drives[1].option("discard"));
    CHECK(web.drives[2].key == "virtio0");
    CHECK(web.drives[3].key == "sata0");
    CHECK(web.drives[1].withOption("discard", "on") ==
          "local-lvm:vm-100-disk-1,iothread=1,size=100G,discard=on");
    CHECK(web.drives[0].withOption("discard", "on") ==
          "local-lvm:vm-100-disk-0,discard=on,iothread=1,size=32G,ssd=1");

    const auto legacy = parsePveVmConfig(readData("pve/qemu-server/101.conf"), "101");
    CHECK(legacy.scsihw.empty());
    CHECK(pveScsiControllerModel(legacy.scsihw) == "lsi53c895a");
    CHECK(legacy.snapshots == std::vector<std::string>{"before-upgrade"});
    REQUIRE(legacy.drives.size() == 2); // the snapshot's scsi0 and unused0 are not disks

    const auto db = parsePveVmConfig(readData("pve/qemu-server/102.conf"), "102");
    REQUIRE(db.pending.count("scsi0") == 1);
    CHECK(db.pending.at("scsi0").find("discard=on") != std::string::npos);
    CHECK(!db.drives[0].option("discard"));
}

TEST_CASE("libvirt domains: file and block disks, discard set and missing, the SCSI model") {
    const auto web = parseLibvirtDomain(parseXml(readData("libvirt/web2.xml"), "web2.xml"));
    CHECK(web.name == "web2");
    REQUIRE(web.disks.size() == 2); // the CD-ROM is left out
    CHECK(web.disks[0].target == "vda");
    CHECK(web.disks[0].settings.bus == "virtio");
    CHECK(web.disks[0].settings.format == "qcow2");
    CHECK(web.disks[0].settings.discard == DiscardMode::Unmap);
    CHECK(web.disks[0].settings.detectZeroes == "unmap");
    CHECK(web.disks[0].settings.image == "/var/lib/libvirt/images/web2.qcow2");
    CHECK(web.disks[1].settings.discard == DiscardMode::Ignore);
    CHECK(!web.disks[1].discardSet);
    CHECK(web.disks[1].settings.controller == "virtio-scsi-pci");

    const auto db = parseLibvirtDomain(parseXml(readData("libvirt/db2.xml"), "db2.xml"));
    REQUIRE(db.disks.size() == 2);
    CHECK(db.disks[0].sourceKind == "block");
    CHECK(db.disks[0].settings.image == "/dev/vg0/db2-data");
    CHECK(db.disks[0].discardSet);
    CHECK(db.disks[0].settings.discard == DiscardMode::Ignore);
    CHECK(db.disks[1].settings.controller == "lsi53c895a"); // libvirt's default model

    CHECK_THROWS_AS(parseLibvirtDomain(parseXml("<network/>", "n")), Error);
}
