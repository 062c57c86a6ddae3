// SPDX-License-Identifier: GPL-2.0-or-later
#include "prove.h"

#include "base/error.h"
#include "base/text.h"
#include "base/units.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

namespace thintrim::host {

std::uint64_t GuestTrim::trimmedBytes() const {
    std::uint64_t total = 0;
    for (const auto& filesystem : filesystems)
        total = saturatingAdd(total, filesystem.trimmedBytes);
    return total;
}

std::optional<std::uint64_t> GuestTrim::reachedDiskBytes() const {
    std::optional<std::uint64_t> total;
    for (const auto& filesystem : filesystems) {
        if (filesystem.reachedDiskBytes)
            total = saturatingAdd(total.value_or(0), *filesystem.reachedDiskBytes);
    }
    return total;
}

std::optional<std::vector<GuestFilesystemTrim>> parseThintrimTrimJson(std::string_view text) {
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("results") ||
        !json["results"].is_array())
        return std::nullopt;
    std::vector<GuestFilesystemTrim> filesystems;
    for (const auto& result : json["results"]) {
        if (!result.is_object())
            continue;
        GuestFilesystemTrim filesystem;
        filesystem.mountPoint = result.value("mount_point", "");
        if (result.contains("trimmed_bytes") && result["trimmed_bytes"].is_number_unsigned())
            filesystem.trimmedBytes = result["trimmed_bytes"].get<std::uint64_t>();
        if (result.contains("reached_disk_bytes") &&
            result["reached_disk_bytes"].is_number_unsigned())
            filesystem.reachedDiskBytes = result["reached_disk_bytes"].get<std::uint64_t>();
        filesystems.push_back(std::move(filesystem));
    }
    return filesystems;
}

std::vector<GuestFilesystemTrim> parseFstrimOutput(std::string_view text) {
    std::vector<GuestFilesystemTrim> filesystems;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos)
            end = text.size();
        const std::string_view line = text.substr(start, end - start);
        start = end + 1;
        const auto colon = line.find(": ");
        const auto open = line.find('(');
        const auto bytes = line.find(" bytes)");
        if (colon == std::string_view::npos || open == std::string_view::npos ||
            bytes == std::string_view::npos || bytes < open)
            continue;
        if (auto value = parseDecimal(line.substr(open + 1, bytes - open - 1)))
            filesystems.push_back({std::string(line.substr(0, colon)), *value, std::nullopt});
    }
    return filesystems;
}

std::vector<GuestFilesystemDisks> parseGuestFsInfo(const nlohmann::json& fsinfo) {
    std::vector<GuestFilesystemDisks> filesystems;
    if (!fsinfo.is_array())
        return filesystems;
    auto text = [](const nlohmann::json& object, const char* key) {
        auto found = object.find(key);
        return found != object.end() && found->is_string() ? found->get<std::string>()
                                                           : std::string();
    };
    for (const auto& entry : fsinfo) {
        if (!entry.is_object())
            continue;
        GuestFilesystemDisks filesystem{text(entry, "mountpoint"), text(entry, "type"), {}};
        if (auto disks = entry.find("disk"); disks != entry.end() && disks->is_array()) {
            for (const auto& disk : *disks) {
                if (disk.is_object())
                    filesystem.disks.push_back(
                        {text(disk, "serial"), text(disk, "bus-type"), text(disk, "dev")});
            }
        }
        filesystems.push_back(std::move(filesystem));
    }
    return filesystems;
}

bool isSameDisk(const GuestDiskId& guest, const AuditedDisk& disk) {
    if (guest.serial.empty())
        return false;
    // QEMU gives the guest at most 20 bytes of a serial (virtio-blk's
    // VIRTIO_BLK_ID_BYTES, scsi-hd's device identification); udev writes
    // SCSI ones as VENDOR_MODEL_ID.
    auto matches = [&](const std::string& id) {
        const std::string shown = id.substr(0, 20);
        return guest.serial == shown || guest.serial.ends_with("_" + shown);
    };
    if (!disk.serial.empty())
        return matches(disk.serial);
    // Without serial=, a scsi-hd identifies itself by its -drive's id.
    return disk.effective().bus == "scsi" && !disk.runningFromBlockdev &&
           !disk.runningDriveId.empty() && guest.serial.ends_with("_" + disk.runningDriveId);
}

namespace {

// The disk has something the guest sees as its serial: serial=, or a
// scsi-hd's -drive id.
bool showsSerial(const AuditedDisk& disk) {
    return !disk.serial.empty() || (disk.effective().bus == "scsi" && !disk.runningFromBlockdev &&
                                    !disk.runningDriveId.empty());
}

} // namespace

std::uint64_t placeGuestTrims(std::vector<DiskProof>& proofs, const GuestTrim& trim,
                              const std::vector<GuestFilesystemDisks>& fsinfo) {
    // A guest disk without a serial is the VM's one disk that shows none
    // (a virtio-blk without serial=, often the root disk), when there is
    // exactly one such; with more it cannot be told which.
    std::optional<std::size_t> onlySerialless;
    for (std::size_t i = 0; i < proofs.size(); ++i) {
        if (showsSerial(proofs[i].disk))
            continue;
        if (onlySerialless) {
            onlySerialless.reset();
            break;
        }
        onlySerialless = i;
    }
    auto matches = [&](const GuestDiskId& id, std::size_t i) {
        if (id.serial.empty())
            return onlySerialless == i;
        return isSameDisk(id, proofs[i].disk);
    };
    std::uint64_t unplaced = 0;
    std::vector<std::uint64_t> trimmed(proofs.size(), 0);
    for (const GuestFilesystemTrim& filesystem : trim.filesystems) {
        bool placed = false;
        for (const GuestFilesystemDisks& info : fsinfo) {
            if (info.mountPoint != filesystem.mountPoint)
                continue;
            for (std::size_t i = 0; i < proofs.size(); ++i) {
                const bool onThisDisk =
                    std::any_of(info.disks.begin(), info.disks.end(),
                                [&](const GuestDiskId& id) { return matches(id, i); });
                if (!onThisDisk)
                    continue;
                // A filesystem over several disks (LVM, RAID) counts on each:
                // what reached which one is not known here.
                trimmed[i] = saturatingAdd(trimmed[i], filesystem.trimmedBytes);
                proofs[i].guestMountPoints.push_back(filesystem.mountPoint);
                placed = true;
            }
        }
        if (!placed)
            unplaced = saturatingAdd(unplaced, filesystem.trimmedBytes);
    }
    for (std::size_t i = 0; i < proofs.size(); ++i) {
        if (trimmed[i] > 0 || unplaced == 0)
            proofs[i].guestTrimmedBytes = trimmed[i];
        else
            proofs[i].guestTrimmedBytes.reset();
    }
    return unplaced;
}

namespace {

std::optional<std::uint64_t> growth(std::optional<std::uint64_t> before,
                                    std::optional<std::uint64_t> after) {
    if (!before || !after)
        return std::nullopt;
    return *after >= *before ? *after - *before : 0;
}

} // namespace

bool DiskProof::qemuCountsDiscards() const {
    return disk.effective().bus != "virtio" ||
           growth(before.unmapBytes, after.unmapBytes).value_or(0) > 0;
}

std::optional<std::uint64_t> DiskProof::qemuReceivedBytes() const {
    if (!qemuCountsDiscards())
        return std::nullopt;
    return growth(before.unmapBytes, after.unmapBytes);
}

std::optional<std::uint64_t> DiskProof::qemuReceivedOperations() const {
    if (!qemuCountsDiscards())
        return std::nullopt;
    return growth(before.unmapOperations, after.unmapOperations);
}

std::optional<std::uint64_t> DiskProof::releasedBytes() const {
    if (!before.allocatedBytes || !after.allocatedBytes)
        return std::nullopt;
    return *before.allocatedBytes > *after.allocatedBytes
               ? *before.allocatedBytes - *after.allocatedBytes
               : 0;
}

void judge(DiskProof& proof, std::uint64_t guestTrimmedBytes) {
    const auto received = proof.qemuReceivedBytes();
    const auto released = proof.releasedBytes();
    const AuditedDisk& disk = proof.disk;
    const bool counted = proof.qemuCountsDiscards();
    const bool placed = proof.guestTrimmedBytes.has_value();
    const std::uint64_t trimmed = proof.guestTrimmedBytes.value_or(guestTrimmedBytes);
    const std::string where =
        !placed ? std::string()
        : proof.guestMountPoints.empty()
            ? std::string(" on this disk")
            : fmt::format(" on this disk ({})", fmt::join(proof.guestMountPoints, ", "));
    const std::string uncounted =
        "QEMU does not count virtio-blk discards (query-blockstats' unmap_bytes stays 0), so "
        "this is judged by the image's allocation";
    auto set = [&](StopLayer layer, std::string explanation) {
        proof.verdict = layer;
        proof.explanation = std::move(explanation);
    };
    if (released && *released > 0) {
        std::string how;
        if (received && *received > 0)
            how = fmt::format(" of the {} QEMU received", formatSize(*received));
        else if (received)
            how = " (QEMU's device saw no discard: it was freed by another way in)";
        else if (!counted)
            how = fmt::format(" ({})", uncounted);
        set(StopLayer::None, fmt::format("the image gave back {}{}", formatSize(*released), how));
        return;
    }
    if (placed && trimmed == 0) {
        set(StopLayer::NothingTrimmed,
            !disk.deviceDiscardOff.empty()
                ? fmt::format("the guest trimmed nothing on this disk: its device has {}, so the "
                              "guest cannot send it discards (`thintrim-host audit` gives the "
                              "fix)",
                              disk.deviceDiscardOff)
            : proof.guestMountPoints.empty()
                ? std::string("the guest trimmed no filesystem on this disk (none mounted from "
                              "it, or none the guest agent placed on it): nothing to prove here")
                : fmt::format("nothing trimmed in the guest on this disk ({}): no free space "
                              "was left to trim; write a file, sync, delete it and prove again",
                              fmt::join(proof.guestMountPoints, ", ")));
        return;
    }
    if (received && *received == 0) {
        if (trimmed == 0)
            set(StopLayer::Inconclusive,
                "the guest trimmed nothing and QEMU received no discard: free some space in the "
                "guest (write a file, sync, delete it) and prove again");
        else if (placed)
            set(StopLayer::GuestStack,
                fmt::format("the guest trimmed {}{} but QEMU received no discard for it: a layer "
                            "inside the guest drops them (`thintrim doctor` in the guest names "
                            "it)",
                            formatSize(trimmed), where));
        else
            set(StopLayer::GuestStack,
                fmt::format("the guest trimmed {} but QEMU received no discard for this disk: a "
                            "layer inside the guest drops them (`thintrim doctor` in the guest "
                            "names it), or its trimmed filesystems are on other disks (they "
                            "could not be placed on disks)",
                            formatSize(trimmed)));
        return;
    }
    const std::string receivedText =
        received ? fmt::format("QEMU received {} of discards", formatSize(*received))
        : counted
            ? std::string("QEMU's counters could not be read")
            : fmt::format("the guest trimmed {}{}; {}", formatSize(trimmed), where, uncounted);
    if (!disk.passesDiscards()) {
        set(StopLayer::QemuIgnore,
            fmt::format("{}, and the image kept its allocation: the disk runs with "
                        "discard=ignore, QEMU drops the discards",
                        receivedText));
        return;
    }
    if (disk.usage.qcow2 &&
        (disk.usage.qcow2->snapshots > 0 || !disk.usage.qcow2->backingFile.empty())) {
        set(StopLayer::Qcow2Pinned,
            fmt::format(
                "{}; QEMU passes discards on (discard=unmap), but the qcow2 image kept its "
                "clusters: {}",
                receivedText,
                disk.usage.qcow2->snapshots > 0
                    ? fmt::format("{} internal snapshot(s) hold them", disk.usage.qcow2->snapshots)
                    : fmt::format("they are in the backing file {}",
                                  disk.usage.qcow2->backingFile)));
        return;
    }
    if (disk.usage.thinPoolDiscards == ThinPoolDiscards::Ignore) {
        set(StopLayer::ThinPool,
            fmt::format("{}; QEMU passes discards on (discard=unmap), but thin pool {} ignores "
                        "them",
                        receivedText, disk.usage.thinPool));
        return;
    }
    if (!released) {
        set(StopLayer::Inconclusive,
            fmt::format("{}; the image's allocation could not be measured", receivedText));
        return;
    }
    if (!received) {
        set(StopLayer::Inconclusive,
            counted ? fmt::format("{}; the image's allocation did not change", receivedText)
                    : fmt::format("{}: the image did not shrink although QEMU passes discards "
                                  "(discard=unmap), so they stopped either in the guest "
                                  "(`thintrim doctor` there) or below QEMU, which cannot be "
                                  "told apart without QEMU's count",
                                  receivedText));
        return;
    }
    set(StopLayer::BelowQemu,
        fmt::format("{} and passed them on with discard=unmap, but the image did not shrink: "
                    "the discards may be smaller than the image's cluster or block size, or the "
                    "storage under the image does not free space",
                    receivedText));
}

namespace {

DiskMeasure measure(const AuditedDisk& disk, const ImageProbe& probe,
                    const std::vector<BlockUnmapStats>& stats) {
    DiskMeasure measured;
    measured.allocatedBytes = probeImage(disk.image(), probe).allocatedBytes;
    if (auto matched = matchUnmapStats(disk, stats)) {
        measured.unmapBytes = matched->unmapBytes;
        measured.unmapOperations = matched->unmapOperations;
    }
    return measured;
}

std::vector<BlockUnmapStats> readStats(QmpClient& qmp) {
    const auto block = qmp.execute("query-block");
    return parseUnmapStats(block, qmp.execute("query-blockstats"));
}

} // namespace

GuestTrim trimInGuest(GuestAgentClient& agent, std::chrono::milliseconds timeout) {
    GuestTrim trim;
    // thintrim first (through its daemon, else in-process); fstrim where it
    // is not installed. guest-exec fails outright when the program is missing.
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"trim", "--all", "--json"},
          std::vector<std::string>{"trim", "--local", "--all", "--json"}}) {
        GuestExecResult result;
        try {
            result = agent.run("thintrim", args, timeout);
        } catch (const Error& e) {
            if (std::string_view(e.what()).find("did not finish") != std::string_view::npos)
                throw;
            break; // not installed: fstrim
        }
        trim.command = fmt::format("thintrim {}", fmt::join(args, " "));
        trim.exitCode = result.exitCode;
        trim.error = result.err;
        if (auto filesystems = parseThintrimTrimJson(result.out)) {
            trim.filesystems = std::move(*filesystems);
            return trim;
        }
    }
    const GuestExecResult result = agent.run("fstrim", {"-av"}, timeout);
    trim.command = "fstrim -av";
    trim.exitCode = result.exitCode;
    trim.error = result.err;
    trim.filesystems = parseFstrimOutput(result.out);
    return trim;
}

ProveReport runProve(const ProveOptions& options, const ImageProbe& probe) {
    AuditRoots roots = options.roots;
    roots.onlyVm = options.vm;
    // The counters come from the QMP connection opened below, not the audit's.
    AuditReport audit = runAudit(roots, probe, {});
    std::erase_if(audit.disks, [](const AuditedDisk& disk) { return !disk.running; });
    const bool explicitSockets = !options.qmpSocket.empty() && !options.agentSocket.empty();
    if (audit.disks.empty() && !explicitSockets)
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("VM {} is not running: no QEMU process for it under {}", options.vm,
                                roots.procRoot.string()));
    ProveReport report;
    report.vm = options.vm;
    const AuditedDisk* first = audit.disks.empty() ? nullptr : &audit.disks.front();
    const bool proxmox = first && first->source == "proxmox";
    report.qmpSocket = !options.qmpSocket.empty() ? options.qmpSocket
                       : first && !first->qmpSocket.empty()
                           ? first->qmpSocket
                           : (options.proxmoxRunDir / (options.vm + ".qmp")).string();
    report.guestAgentSocket = !options.agentSocket.empty()                ? options.agentSocket
                              : first && !first->guestAgentSocket.empty() ? first->guestAgentSocket
                              : proxmox ? (options.proxmoxRunDir / (options.vm + ".qga")).string()
                                        : std::string();
    if (report.guestAgentSocket.empty() && first && first->source == "libvirt")
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("libvirt keeps the guest agent and QMP of VM {0} to itself (it "
                                "passes QEMU file descriptors, not socket paths): `virsh "
                                "domfstrim {0}` trims, `virsh domblkstat {0}` shows the counters; "
                                "or give --qga and --qmp of channels added for thintrim-host",
                                options.vm));
    if (report.guestAgentSocket.empty())
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("VM {} has no guest agent channel (org.qemu.guest_agent.0) on its "
                                "command line: add one, or name its socket with --qga",
                                options.vm));
    // The agent first: a VM without one is the common failure, and nothing
    // has been measured yet when it is found.
    GuestAgentClient agent =
        GuestAgentClient::connect(report.guestAgentSocket, options.requestTimeout);
    QmpClient qmp = QmpClient::connect(report.qmpSocket, options.requestTimeout);
    for (AuditedDisk& disk : audit.disks)
        disk.qemuVersion = qmp.qemuVersion();
    const auto statsBefore = readStats(qmp);
    for (const AuditedDisk& disk : audit.disks) {
        DiskProof proof;
        proof.disk = disk;
        proof.before = measure(disk, probe, statsBefore);
        report.disks.push_back(std::move(proof));
    }
    // Which guest filesystem is on which disk, so each disk is judged by
    // what was trimmed on it. An agent without guest-get-fsinfo (or with it
    // disallowed) leaves the old way: the guest's total for every disk.
    std::vector<GuestFilesystemDisks> fsinfo;
    try {
        fsinfo = parseGuestFsInfo(agent.execute("guest-get-fsinfo"));
    } catch (const Error& e) {
        report.fsinfoError = e.what();
    }
    report.guest = trimInGuest(agent, options.trimTimeout);
    // qcow2 and thin LVs free synchronously; a moment for the last requests.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto statsAfter = readStats(qmp);
    if (report.fsinfoError.empty())
        report.unplacedTrimmedBytes = placeGuestTrims(report.disks, report.guest, fsinfo);
    for (DiskProof& proof : report.disks) {
        proof.after = measure(proof.disk, probe, statsAfter);
        proof.disk.unmap = matchUnmapStats(proof.disk, statsAfter);
        judge(proof, report.guest.trimmedBytes());
    }
    return report;
}

} // namespace thintrim::host
