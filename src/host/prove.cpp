// SPDX-License-Identifier: GPL-2.0-or-later
#include "prove.h"

#include "error.h"
#include "text.h"
#include "units.h"

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

std::string_view stopLayerName(StopLayer layer) {
    switch (layer) {
    case StopLayer::None:
        return "none";
    case StopLayer::GuestStack:
        return "guest stack";
    case StopLayer::QemuIgnore:
        return "qemu discard=ignore";
    case StopLayer::Qcow2Pinned:
        return "qcow2 snapshot or backing file";
    case StopLayer::ThinPool:
        return "thin pool";
    case StopLayer::BelowQemu:
        return "below qemu";
    case StopLayer::Inconclusive:
        return "inconclusive";
    }
    return "inconclusive";
}

std::optional<std::uint64_t> DiskProof::qemuReceivedBytes() const {
    if (!before.unmapBytes || !after.unmapBytes)
        return std::nullopt;
    return after.unmapBytes >= before.unmapBytes ? *after.unmapBytes - *before.unmapBytes : 0;
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
    auto set = [&](StopLayer layer, std::string explanation) {
        proof.verdict = layer;
        proof.explanation = std::move(explanation);
    };
    if (released && *released > 0) {
        std::string counted;
        if (received && *received > 0)
            counted = fmt::format(" of the {} QEMU received", formatSize(*received));
        else if (received)
            counted = " (QEMU's device saw no discard: it was freed by another way in)";
        set(StopLayer::None,
            fmt::format("the image gave back {}{}", formatSize(*released), counted));
        return;
    }
    if (received && *received == 0) {
        if (guestTrimmedBytes == 0)
            set(StopLayer::Inconclusive,
                "the guest trimmed nothing and QEMU received no discard: free some space in the "
                "guest (write a file, sync, delete it) and prove again");
        else
            set(StopLayer::GuestStack,
                fmt::format("the guest trimmed {} but QEMU received no discard for this disk: a "
                            "layer inside the guest drops them (`thintrim doctor` in the guest "
                            "names it), or its trimmed filesystems are on other disks",
                            formatSize(guestTrimmedBytes)));
        return;
    }
    const std::string receivedText =
        received ? fmt::format("QEMU received {} of discards", formatSize(*received))
                 : std::string("QEMU's counters could not be read");
    if (disk.effective().discard == DiscardMode::Ignore) {
        set(StopLayer::QemuIgnore,
            fmt::format("{}, and dropped them: the disk runs with discard=ignore", receivedText));
        return;
    }
    if (disk.usage.qcow2 &&
        (disk.usage.qcow2->snapshots > 0 || !disk.usage.qcow2->backingFile.empty())) {
        set(StopLayer::Qcow2Pinned,
            fmt::format(
                "{} and passed them on, but the qcow2 image kept its clusters: {}", receivedText,
                disk.usage.qcow2->snapshots > 0
                    ? fmt::format("{} internal snapshot(s) hold them", disk.usage.qcow2->snapshots)
                    : fmt::format("they are in the backing file {}",
                                  disk.usage.qcow2->backingFile)));
        return;
    }
    if (disk.usage.thinPoolDiscards == ThinPoolDiscards::Ignore) {
        set(StopLayer::ThinPool, fmt::format("{} and passed them on; thin pool {} ignores discards",
                                             receivedText, disk.usage.thinPool));
        return;
    }
    if (!received || !released) {
        set(StopLayer::Inconclusive,
            fmt::format("{}; the image's allocation {}", receivedText,
                        released ? "did not change" : "could not be measured"));
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
    if (auto matched = matchUnmapStats(disk, stats))
        measured.unmapBytes = matched->unmapBytes;
    return measured;
}

std::vector<BlockUnmapStats> readStats(QmpClient& qmp) {
    const auto block = qmp.execute("query-block");
    return parseUnmapStats(block, qmp.execute("query-blockstats"));
}

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

} // namespace

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
    for (const AuditedDisk& disk : audit.disks)
        report.disks.push_back({disk, measure(disk, probe, statsBefore), {}, {}, {}});
    report.guest = trimInGuest(agent, options.trimTimeout);
    // qcow2 and thin LVs free synchronously; a moment for the last requests.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto statsAfter = readStats(qmp);
    for (DiskProof& proof : report.disks) {
        proof.after = measure(proof.disk, probe, statsAfter);
        judge(proof, report.guest.trimmedBytes());
    }
    return report;
}

} // namespace thintrim::host
