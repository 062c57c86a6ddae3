// SPDX-License-Identifier: GPL-2.0-or-later
#include "audit.h"

#include "base/error.h"
#include "base/text.h"
#include "base/units.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace thintrim::host {

const DiskSettings& AuditedDisk::effective() const {
    if (running)
        return *running;
    if (configured)
        return *configured;
    static const DiskSettings none;
    return none;
}

namespace {

std::optional<std::string> readTextFile(const std::filesystem::path& path, std::string& problem) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        problem = fmt::format("{}: {}", path.string(), std::strerror(errno));
        return std::nullopt;
    }
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

std::vector<std::filesystem::path> filesEndingIn(const std::filesystem::path& dir,
                                                 std::string_view suffix) {
    std::vector<std::filesystem::path> files;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
        if (entry.path().filename().string().ends_with(suffix))
            files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

DiskSettings pveSettings(const PveDriveLine& drive, const PveVmConfig& config,
                         const std::vector<PveStorage>& storages, StorageInfo* storage) {
    DiskSettings settings;
    const ResolvedVolume resolved = resolvePveVolume(storages, drive.volume);
    settings.image = resolved.path.empty() ? drive.volume : resolved.path;
    settings.format = drive.option("format").value_or(resolved.format);
    settings.bus = drive.key.substr(0, drive.key.find_first_of("0123456789"));
    if (settings.bus == "scsi")
        settings.controller = pveScsiControllerModel(config.scsihw);
    settings.discard = drive.option("discard") == "on" ? DiscardMode::Unmap : DiscardMode::Ignore;
    // qemu-server: detect-zeroes follows discard unless turned off.
    if (drive.option("detect_zeroes") == "0")
        settings.detectZeroes = "off";
    else
        settings.detectZeroes = settings.discard == DiscardMode::Unmap ? "unmap" : "on";
    if (storage)
        *storage = resolved.storage;
    return settings;
}

bool sameImage(const std::string& a, const std::string& b) {
    if (a == b)
        return true;
    std::error_code error;
    return !a.empty() && !b.empty() && a.starts_with('/') && b.starts_with('/') &&
           std::filesystem::equivalent(a, b, error);
}

std::string stopStart(const AuditedDisk& disk) {
    if (disk.source == "proxmox")
        return fmt::format("qm shutdown {0} && qm start {0} (a reboot inside the guest does "
                           "not apply it)",
                           disk.vm);
    if (disk.source == "libvirt")
        return fmt::format("virsh shutdown {0} && virsh start {0} (a reboot inside the guest "
                           "does not apply it)",
                           disk.vm);
    return "stop QEMU and start it again";
}

std::string discardFix(const AuditedDisk& disk) {
    const DiskSettings& settings = disk.effective();
    if (disk.source == "proxmox" && disk.pveDrive) {
        return fmt::format("qm set {} --{} {}, then a full stop/start: {}", disk.vm, disk.disk,
                           disk.pveDrive->withOption("discard", "on"), stopStart(disk));
    }
    if (disk.source == "libvirt") {
        return fmt::format("virsh edit {}: in the <disk> with <target dev='{}'/>, set <driver "
                           "name='qemu' type='{}' discard='unmap' detect_zeroes='unmap'/>; then {}",
                           disk.vm, disk.disk, settings.format.empty() ? "raw" : settings.format,
                           stopStart(disk));
    }
    if (disk.runningFromBlockdev)
        return fmt::format("add \"discard\":\"unmap\" to every -blockdev node of {} (format and "
                           "protocol node alike), then {}",
                           disk.runningDriveId, stopStart(disk));
    return fmt::format("add discard=unmap,detect-zeroes=unmap to -drive id={}, then {}",
                       disk.runningDriveId.empty() ? disk.disk : disk.runningDriveId,
                       stopStart(disk));
}

std::string describe(const DiskSettings& settings) {
    return fmt::format("discard={}{}", discardModeName(settings.discard),
                       settings.detectZeroes.empty()
                           ? std::string()
                           : fmt::format(" detect-zeroes={}", settings.detectZeroes));
}

// "3.1.0" is below major 4; an unreadable version is not.
bool versionBelow(const std::string& version, unsigned major) {
    const auto first =
        parseDecimal<unsigned>(std::string_view(version).substr(0, version.find('.')));
    return first && *first < major;
}

} // namespace

void computeFindings(AuditedDisk& disk) {
    disk.findings.clear();
    auto add = [&](FindingSeverity severity, std::string message, std::string fix) {
        disk.findings.push_back({severity, std::move(message), std::move(fix)});
    };
    if (disk.pid && !disk.running && disk.configured)
        add(FindingSeverity::Info,
            fmt::format("in the configuration but not attached to the running QEMU (pid {})",
                        *disk.pid),
            stopStart(disk));
    const DiskSettings& settings = disk.effective();
    if (settings.discard == DiscardMode::Ignore) {
        if (disk.pending && disk.pending->discard == DiscardMode::Unmap)
            add(FindingSeverity::Error,
                fmt::format("discard is off: a pending change in {} turns it on, but only a full "
                            "stop/start applies it; until then the guest's TRIM stops in QEMU",
                            disk.configFile),
                fmt::format("a full stop/start: {}", stopStart(disk)));
        else if (disk.running && disk.configured && disk.configured->discard == DiscardMode::Unmap)
            add(FindingSeverity::Error,
                "QEMU runs with discard=ignore but the configuration says discard=on: the change "
                "is not applied yet, and until it is the guest's TRIM stops in QEMU",
                fmt::format("a full stop/start: {}", stopStart(disk)));
        else
            add(FindingSeverity::Error,
                fmt::format("discard is off ({} discard=ignore): the guest's TRIM stops in QEMU "
                            "and the image never shrinks",
                            disk.running ? "QEMU runs with" : "the configuration gives QEMU"),
                discardFix(disk));
    } else if (disk.running && disk.configured && disk.configured->discard == DiscardMode::Ignore) {
        add(FindingSeverity::Warning,
            "QEMU runs with discard=unmap but the configuration says discard=ignore: the next "
            "start turns discard off",
            discardFix(disk));
    }
    if (disk.running && disk.configured && disk.running->discard == disk.configured->discard &&
        !disk.configured->detectZeroes.empty() && !disk.running->detectZeroes.empty() &&
        disk.running->detectZeroes != disk.configured->detectZeroes)
        add(FindingSeverity::Info,
            fmt::format("QEMU runs with detect-zeroes={}, the configuration says {}: applied at "
                        "the next full stop/start",
                        disk.running->detectZeroes, disk.configured->detectZeroes),
            stopStart(disk));
    if (disk.pending && settings.discard == DiscardMode::Unmap &&
        (disk.pending->discard != settings.discard ||
         disk.pending->detectZeroes != settings.detectZeroes))
        add(FindingSeverity::Warning,
            fmt::format("a pending change in {} ([PENDING]) sets {} (now {}): applied at the next "
                        "full stop/start",
                        disk.configFile, describe(*disk.pending), describe(settings)),
            stopStart(disk));
    if (!disk.deviceDiscardOff.empty())
        add(FindingSeverity::Error,
            fmt::format("the running device ({} {}) has {}: the guest sees a disk without "
                        "discard support and never sends a TRIM, whatever the drive's discard= "
                        "says",
                        disk.deviceDriver.empty() ? std::string("-device") : disk.deviceDriver,
                        disk.disk, disk.deviceDiscardOff),
            fmt::format("remove {} from the -device of {}{}, then {}", disk.deviceDiscardOff,
                        disk.disk,
                        disk.source == "proxmox"   ? fmt::format(" (qm config {}: an args: line "
                                                                   "or a hookscript adds it)",
                                                                 disk.vm)
                        : disk.source == "libvirt" ? " (virsh edit: wherever the domain adds it)"
                                                   : std::string(),
                        stopStart(disk)));
    if (settings.bus == "virtio" && !disk.qemuVersion.empty() && versionBelow(disk.qemuVersion, 4))
        add(FindingSeverity::Error,
            fmt::format("virtio-blk passes discards from QEMU 4.0 on; this QEMU is {}",
                        disk.qemuVersion),
            disk.source == "proxmox"
                ? fmt::format("move the disk to VirtIO SCSI (scsihw virtio-scsi-single), or "
                              "upgrade QEMU, then {}",
                              stopStart(disk))
                : "attach it as SCSI behind a virtio-scsi controller, or upgrade QEMU");
    if (settings.bus == "scsi" && !settings.controller.empty() &&
        !settings.controller.starts_with("virtio-scsi"))
        add(FindingSeverity::Info,
            fmt::format("SCSI controller {}: QEMU answers UNMAP behind it, but guests' drivers "
                        "for it (Windows' LSI driver, old kernels) may not send it; VirtIO SCSI "
                        "is the controller discards are tested with",
                        settings.controller),
            disk.source == "proxmox" ? fmt::format("qm set {} --scsihw virtio-scsi-single, then {}",
                                                   disk.vm, stopStart(disk))
            : disk.source == "libvirt"
                ? fmt::format("virsh edit {}: <controller type='scsi' model='virtio-scsi'/>, "
                              "then {}",
                              disk.vm, stopStart(disk))
                : "use -device virtio-scsi-pci as the disk's controller");
    if (settings.bus == "sd" || settings.bus == "xen" || settings.bus == "fdc")
        add(FindingSeverity::Error,
            fmt::format("bus {} cannot pass discards to QEMU's block layer", settings.bus),
            "attach the disk as virtio or as SCSI behind virtio-scsi");

    const ImageUsage& usage = disk.usage;
    if (usage.qcow2 && usage.qcow2->snapshots > 0) {
        std::string fix;
        if (disk.source == "proxmox")
            fix = fmt::format("qm listsnapshot {0}; qm delsnapshot {0} NAME", disk.vm);
        else if (disk.source == "libvirt")
            fix = fmt::format("virsh snapshot-list {0}; virsh snapshot-delete {0} NAME", disk.vm);
        else
            fix = fmt::format("qemu-img snapshot -l {0}; qemu-img snapshot -d NAME {0} (with the "
                              "VM stopped)",
                              settings.image);
        add(FindingSeverity::Warning,
            fmt::format("{} internal qcow2 snapshot(s) keep the clusters the guest discards: "
                        "the image gives back only what no snapshot holds",
                        usage.qcow2->snapshots),
            fix);
    }
    if (usage.qcow2 && !usage.qcow2->backingFile.empty())
        add(FindingSeverity::Info,
            fmt::format("backed by {}: discards free this overlay's clusters only; what the guest "
                        "still reads from the backing file stays there",
                        usage.qcow2->backingFile),
            disk.source == "proxmox"
                ? fmt::format("a full clone (qm clone) or qm disk move {} {} STORAGE", disk.vm,
                              disk.disk)
            : disk.source == "libvirt"
                ? fmt::format("virsh blockpull {} {} (flattens the chain)", disk.vm, disk.disk)
                : fmt::format("qemu-img rebase -b '' {} (VM stopped) flattens it", settings.image));
    if (!disk.vmSnapshots.empty() &&
        (disk.storage.type == "lvmthin" || disk.storage.type == "zfspool"))
        add(FindingSeverity::Warning,
            fmt::format("the VM has {} snapshot(s) ({}): on {} a snapshot keeps the blocks the "
                        "guest discards",
                        disk.vmSnapshots.size(), fmt::join(disk.vmSnapshots, ", "),
                        disk.storage.type),
            fmt::format("qm delsnapshot {} NAME", disk.vm));
    if (usage.thinPoolDiscards && *usage.thinPoolDiscards != ThinPoolDiscards::Passdown) {
        const bool ignores = *usage.thinPoolDiscards == ThinPoolDiscards::Ignore;
        const std::string pool = usage.thinPool.empty() ? disk.storage.thinPool : usage.thinPool;
        add(ignores ? FindingSeverity::Error : FindingSeverity::Warning,
            ignores ? fmt::format("thin pool {} ignores discards: the thin LV never gives its "
                                  "blocks back",
                                  pool)
                    : fmt::format("thin pool {} does not pass discards down (nopassdown): the LV "
                                  "gives blocks back to the pool, the disks under it never hear",
                                  pool),
            fmt::format("lvchange --discards passdown {}", pool));
    }
    if (usage.reservedBytes && *usage.reservedBytes > 0) {
        const std::string dataset = settings.image.substr(std::string_view("/dev/zvol/").size());
        add(FindingSeverity::Warning,
            fmt::format("a thick zvol: refreservation keeps {} for it whatever the guest "
                        "discards",
                        formatSize(*usage.reservedBytes)),
            disk.source == "proxmox"
                ? fmt::format("zfs set refreservation=none {} (and `sparse 1` on storage {} for "
                              "new disks)",
                              dataset, disk.storage.id)
                : fmt::format("zfs set refreservation=none {}", dataset));
    }
    if (disk.storage.type == "lvm")
        add(FindingSeverity::Info, "a thick LV: its size is allocated whatever the guest discards",
            "");
    if (usage.kind == "missing")
        add(settings.image.starts_with("/dev/") && !disk.running ? FindingSeverity::Info
                                                                 : FindingSeverity::Warning,
            fmt::format("the image is not there{}: {}",
                        settings.image.starts_with("/dev/") ? " (an LV not active?)" : "",
                        usage.note),
            "");
    else if (!disk.storage.type.empty() && disk.storage.type != "dir" &&
             disk.storage.type != "lvmthin" && disk.storage.type != "zfspool" &&
             disk.storage.type != "lvm" && disk.storage.type != "file" &&
             disk.storage.type != "block" && disk.storage.type != "nfs" &&
             disk.storage.type != "cifs" && disk.storage.type != "btrfs")
        add(FindingSeverity::Info,
            fmt::format("storage {} is of type {}: its allocation is not read here",
                        disk.storage.id, disk.storage.type),
            "");
}

std::optional<BlockUnmapStats> matchUnmapStats(const AuditedDisk& disk,
                                               const std::vector<BlockUnmapStats>& stats) {
    for (const BlockUnmapStats& entry : stats) {
        if (!disk.runningDriveId.empty() &&
            (entry.device == disk.runningDriveId || entry.nodeName == disk.runningDriveId))
            return entry;
        if (entry.qdev == disk.disk ||
            entry.qdev.find(fmt::format("/peripheral/{}/", disk.disk)) != std::string::npos)
            return entry;
    }
    for (const BlockUnmapStats& entry : stats) {
        if (sameImage(entry.image, disk.image()))
            return entry;
    }
    return std::nullopt;
}

std::vector<AuditedDisk>
collectDisks(const std::vector<std::pair<PveVmConfig, std::string>>& pveConfigs,
             const std::vector<PveStorage>& storages,
             const std::vector<std::pair<LibvirtDomain, std::string>>& domains,
             const std::vector<QemuProcess>& processes) {
    std::vector<AuditedDisk> disks;
    for (const auto& [config, file] : pveConfigs) {
        for (const PveDriveLine& drive : config.drives) {
            AuditedDisk disk;
            disk.source = "proxmox";
            disk.vm = config.vmid;
            disk.vmName = config.name;
            disk.disk = drive.key;
            disk.volume = drive.volume;
            disk.configFile = file;
            disk.pveDrive = drive;
            disk.configured = pveSettings(drive, config, storages, &disk.storage);
            disk.vmSnapshots = config.snapshots;
            if (auto pending = config.pending.find(drive.key); pending != config.pending.end()) {
                if (auto line = parsePveDriveLine(drive.key, pending->second))
                    disk.pending = pveSettings(*line, config, storages, nullptr);
            }
            disks.push_back(std::move(disk));
        }
    }
    for (const auto& [domain, file] : domains) {
        for (const LibvirtDisk& libvirtDisk : domain.disks) {
            AuditedDisk disk;
            disk.source = "libvirt";
            disk.vm = domain.name;
            disk.vmName = domain.name;
            disk.disk = libvirtDisk.target;
            disk.configFile = file;
            disk.configured = libvirtDisk.settings;
            disk.storage.type = libvirtDisk.sourceKind == "block"  ? "block"
                                : libvirtDisk.sourceKind == "file" ? "file"
                                                                   : libvirtDisk.sourceKind;
            disks.push_back(std::move(disk));
        }
    }
    for (const QemuProcess& process : processes) {
        std::string source = "qemu";
        std::string vm = fmt::format("pid {}", process.pid);
        if (!process.vmid.empty()) {
            source = "proxmox";
            vm = process.vmid;
        } else if (!process.name.empty()) {
            const bool known = std::any_of(domains.begin(), domains.end(), [&](const auto& d) {
                return d.first.name == process.name;
            });
            if (known) {
                source = "libvirt";
                vm = process.name;
            }
        }
        const std::size_t configuredCount = disks.size();
        for (std::size_t i = 0; i < configuredCount; ++i) {
            if (disks[i].source == source && disks[i].vm == vm) {
                disks[i].pid = process.pid;
                disks[i].qmpSocket = process.qmpSocket;
                disks[i].guestAgentSocket = process.guestAgentSocket;
            }
        }
        for (const QemuDisk& qemuDisk : process.disks) {
            AuditedDisk* match = nullptr;
            // Proxmox names the device after the key (scsi0); libvirt's
            // aliases are not the target names, the image is what ties them.
            for (std::size_t i = 0; i < configuredCount && match == nullptr; ++i) {
                if (disks[i].source == source && disks[i].vm == vm && !disks[i].running &&
                    ((source == "proxmox" && disks[i].disk == qemuDisk.name) ||
                     sameImage(disks[i].configured ? disks[i].configured->image : "",
                               qemuDisk.settings.image)))
                    match = &disks[i];
            }
            if (match == nullptr) {
                AuditedDisk disk;
                disk.source = source;
                disk.vm = vm;
                disk.vmName = process.name;
                disk.disk = qemuDisk.name;
                disk.pid = process.pid;
                disk.qmpSocket = process.qmpSocket;
                disk.guestAgentSocket = process.guestAgentSocket;
                disk.storage.type = qemuDisk.settings.image.starts_with("/dev/") ? "block" : "file";
                disks.push_back(std::move(disk));
                match = &disks.back();
            }
            match->running = qemuDisk.settings;
            match->runningDriveId = qemuDisk.driveId;
            match->runningFromBlockdev = qemuDisk.fromBlockdev;
            match->deviceDriver = qemuDisk.deviceDriver;
            match->serial = qemuDisk.serial;
            match->deviceDiscardOff = qemuDisk.deviceDiscardOff;
            if (match->vmName.empty())
                match->vmName = process.name;
        }
    }
    return disks;
}

QmpReader systemQmpReader(std::chrono::milliseconds timeout) {
    return [timeout](const std::string& socket, std::string& error) -> std::optional<QmpSnapshot> {
        try {
            QmpClient client = QmpClient::connect(socket, timeout);
            QmpSnapshot snapshot;
            snapshot.qemuVersion = client.qemuVersion();
            const auto block = client.execute("query-block");
            const auto stats = client.execute("query-blockstats");
            snapshot.stats = parseUnmapStats(block, stats);
            return snapshot;
        } catch (const Error& e) {
            error = e.what();
            return std::nullopt;
        }
    };
}

AuditReport runAudit(const AuditRoots& roots, const ImageProbe& probe, const QmpReader& qmp) {
    AuditReport report;
    std::vector<std::pair<PveVmConfig, std::string>> pveConfigs;
    std::vector<PveStorage> storages;
    std::vector<std::pair<LibvirtDomain, std::string>> domains;
    std::string problem;
    if (!roots.pveDir.empty() && std::filesystem::exists(roots.pveDir / "qemu-server")) {
        const auto storageFile = roots.pveDir / "storage.cfg";
        if (auto text = readTextFile(storageFile, problem)) {
            try {
                storages = parsePveStorageConfig(*text, storageFile.string());
            } catch (const Error& e) {
                report.problems.push_back(e.what());
            }
        } else {
            report.problems.push_back(problem);
        }
        for (const auto& file : filesEndingIn(roots.pveDir / "qemu-server", ".conf")) {
            if (auto text = readTextFile(file, problem))
                pveConfigs.emplace_back(parsePveVmConfig(*text, file.stem().string()),
                                        file.string());
            else
                report.problems.push_back(problem);
        }
    }
    if (!roots.libvirtDir.empty()) {
        for (const auto& file : filesEndingIn(roots.libvirtDir, ".xml")) {
            auto text = readTextFile(file, problem);
            if (!text) {
                report.problems.push_back(problem);
                continue;
            }
            try {
                domains.emplace_back(parseLibvirtDomain(parseXml(*text, file.string())),
                                     file.string());
            } catch (const Error& e) {
                report.problems.push_back(e.what());
            }
        }
    }
    std::vector<QemuProcess> processes;
    if (!roots.procRoot.empty()) {
        try {
            processes = scanQemuProcesses(roots.procRoot, roots.onlyPid);
        } catch (const Error& e) {
            if (roots.onlyPid)
                throw;
            report.problems.push_back(e.what());
        }
    }
    report.disks = collectDisks(pveConfigs, storages, domains, processes);
    std::erase_if(report.disks, [&](const AuditedDisk& disk) {
        if (roots.onlyPid && disk.pid != roots.onlyPid)
            return true;
        return !roots.onlyVm.empty() && disk.vm != roots.onlyVm && disk.vmName != roots.onlyVm;
    });
    std::map<std::string, std::pair<std::optional<QmpSnapshot>, std::string>> asked;
    for (AuditedDisk& disk : report.disks) {
        disk.usage = probeImage(disk.image(), probe);
        if (qmp && disk.running && !disk.qmpSocket.empty()) {
            auto found = asked.find(disk.qmpSocket);
            if (found == asked.end()) {
                std::string error;
                auto snapshot = qmp(disk.qmpSocket, error);
                found =
                    asked.emplace(disk.qmpSocket, std::make_pair(std::move(snapshot), error)).first;
            }
            const auto& [snapshot, error] = found->second;
            if (snapshot) {
                disk.qemuVersion = snapshot->qemuVersion;
                disk.unmap = matchUnmapStats(disk, snapshot->stats);
            } else {
                disk.qmpError = error;
            }
        }
        computeFindings(disk);
    }
    return report;
}

} // namespace thintrim::host
