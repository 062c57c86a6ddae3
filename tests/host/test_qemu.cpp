// SPDX-License-Identifier: GPL-2.0-or-later
#include "audit.h"
#include "base/error.h"
#include "catch.h"
#include "image.h"
#include "qemu_process.h"
#include "test_support.h"

#include <fmt/format.h>

using namespace thintrim;
using namespace thintrim::host;
using thintrim::host::test::dataDir;
using thintrim::host::test::readData;

namespace {

QemuProcess processOf(int pid) {
    auto process =
        parseQemuCommandLine(pid, splitCommandLine(readData(fmt::format("proc/{}/cmdline", pid))));
    REQUIRE(process);
    return *process;
}

const QemuDisk& diskNamed(const QemuProcess& process, std::string_view name) {
    for (const QemuDisk& disk : process.disks) {
        if (disk.name == name)
            return disk;
    }
    FAIL("no disk " << name);
    throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("QEMU option syntax: implied keys, ',,' escapes, flags") {
    const auto options = parseQemuOptions("scsi-hd,bus=a.0,file=/x,,y,readonly", "driver");
    REQUIRE(options.size() == 4);
    CHECK(options[0] == std::pair<std::string, std::string>{"driver", "scsi-hd"});
    CHECK(options[2] == std::pair<std::string, std::string>{"file", "/x,y"});
    CHECK(options[3] == std::pair<std::string, std::string>{"readonly", "on"});
    CHECK(splitCommandLine(std::string("a\0b\0\0c\0", 7)) ==
          std::vector<std::string>{"a", "b", "", "c"});
}

TEST_CASE("a captured QEMU 7.2 command line: -drive and -blockdev JSON disks") {
    // tests/host/data/proc/15759: a real qemu-system-x86_64 started on this
    // machine with Proxmox-style -drive and libvirt-style -blockdev disks.
    const QemuProcess process = processOf(15759);
    CHECK(process.name == "vmcap");
    CHECK(process.vmid.empty());
    CHECK(process.qmpSocket == "/tmp/cap/100.qmp");
    REQUIRE(process.disks.size() == 3);
    const QemuDisk& scsi = diskNamed(process, "scsi0");
    CHECK(scsi.driveId == "drive-scsi0");
    CHECK(scsi.settings.bus == "scsi");
    CHECK(scsi.settings.controller == "virtio-scsi-pci");
    CHECK(scsi.settings.discard == DiscardMode::Unmap);
    CHECK(scsi.settings.detectZeroes == "unmap");
    CHECK(scsi.settings.format == "qcow2");
    CHECK(!scsi.fromBlockdev);
    const QemuDisk& blk = diskNamed(process, "virtio1");
    CHECK(blk.settings.bus == "virtio");
    CHECK(blk.settings.discard == DiscardMode::Ignore);
    CHECK(blk.settings.format == "raw");
    const QemuDisk& blockdev = diskNamed(process, "virtio-disk2");
    CHECK(blockdev.fromBlockdev);
    CHECK(blockdev.driveId == "libvirt-1-format");
    CHECK(blockdev.settings.image == "/tmp/cap/libvirt-a.qcow2");
    CHECK(blockdev.settings.format == "qcow2");
    CHECK(blockdev.settings.discard == DiscardMode::Unmap);
}

TEST_CASE("Proxmox VE command lines: -id, sockets, -drive (8) and nested -blockdev (9)") {
    const QemuProcess pve8 = processOf(2102);
    CHECK(pve8.vmid == "102");
    CHECK(pve8.name == "db");
    CHECK(pve8.qmpSocket == "/var/run/qemu-server/102.qmp");
    CHECK(pve8.guestAgentSocket == "/var/run/qemu-server/102.qga");
    CHECK(diskNamed(pve8, "scsi0").settings.discard == DiscardMode::Ignore);
    CHECK(diskNamed(pve8, "scsi0").settings.controller == "virtio-scsi-pci");
    CHECK(diskNamed(pve8, "virtio1").settings.discard == DiscardMode::Unmap);

    const QemuProcess pve9 = processOf(2103);
    const QemuDisk& disk = diskNamed(pve9, "scsi0");
    CHECK(disk.fromBlockdev);
    CHECK(disk.settings.image == "/dev/pve/vm-103-disk-0");
    CHECK(disk.settings.format == "raw");
    CHECK(disk.settings.discard == DiscardMode::Unmap);
    CHECK(disk.settings.detectZeroes == "unmap");
}

TEST_CASE("-blockdev: one node without discard=unmap keeps discards from the image") {
    const QemuProcess libvirt = processOf(3001);
    CHECK(libvirt.name == "web2");
    CHECK(libvirt.qmpSocket.empty()); // libvirt passes an fd, not a path
    CHECK(diskNamed(libvirt, "virtio-disk0").settings.discard == DiscardMode::Unmap);
    // The storage node has discard=unmap, the qcow2 node does not.
    const QemuDisk& data = diskNamed(libvirt, "scsi0-0-0-0");
    CHECK(data.settings.discard == DiscardMode::Ignore);
    CHECK(data.settings.controller == "virtio-scsi-pci");
}

TEST_CASE("processes: only QEMU, a vanished or foreign --pid is an error") {
    const auto all = scanQemuProcesses(dataDir() / "proc", std::nullopt);
    CHECK(all.size() == 4); // sshd is left out
    CHECK(scanQemuProcesses(dataDir() / "proc", 2102).size() == 1);
    CHECK_THROWS_WITH(scanQemuProcesses(dataDir() / "proc", 4000),
                      thintrim::test::Contains("not a QEMU"));
    CHECK_THROWS_WITH(scanQemuProcesses(dataDir() / "proc", 99999),
                      thintrim::test::Contains("no process"));
    CHECK_THROWS_AS(parseQemuCommandLine(1, {"qemu-system-x86_64", "-blockdev", "{bad"}), Error);
    CHECK(!parseQemuCommandLine(1, {"/bin/bash"}));
}

TEST_CASE("qcow2 headers captured from qemu-img: snapshots and backing files") {
    const auto base = parseQcow2Header(readData("qcow2-base.header"));
    REQUIRE(base);
    CHECK(base->version == 3);
    CHECK(base->virtualSize == 64 << 20);
    CHECK(base->snapshots == 0);
    CHECK(base->backingFile.empty());
    const auto overlay = parseQcow2Header(readData("qcow2-overlay.header"));
    REQUIRE(overlay);
    CHECK(overlay->backingFile == "/var/lib/vz/images/100/base.qcow2");
    const auto snap = parseQcow2Header(readData("qcow2-snap.header"));
    REQUIRE(snap);
    CHECK(snap->snapshots == 2);
    CHECK(snap->virtualSize == std::uint64_t{1} << 30);
    CHECK(!parseQcow2Header(std::string(100, '\0')));
    CHECK(!parseQcow2Header("QFI"));
}

TEST_CASE("probing images: files, missing ones, what is not local") {
    const ImageProbe probe;
    const auto missing = probeImage("/nonexistent/x.qcow2", probe);
    CHECK(missing.kind == "missing");
    CHECK(!missing.allocatedBytes);
    const auto rbd = probeImage("rbd:vms/vm-1-disk-0", probe);
    CHECK(rbd.kind == "rbd");
    const auto header = probeImage((dataDir() / "qcow2-snap.header").string(), probe);
    CHECK(header.kind == "qcow2 file");
    CHECK(header.sizeBytes == std::uint64_t{1} << 30);
    CHECK(header.allocatedBytes.has_value());
}

TEST_CASE("the command runner: output, failure, timeout") {
    const auto run = systemCommandRunner(std::chrono::milliseconds(2000));
    CHECK(run({"echo", "hello"}) == "hello\n");
    CHECK(!run({"false"}));
    CHECK(!run({"/nonexistent/program"}));
    const auto quick = systemCommandRunner(std::chrono::milliseconds(200));
    const auto started = std::chrono::steady_clock::now();
    CHECK(!quick({"sleep", "10"}));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
}
