// SPDX-License-Identifier: GPL-2.0-or-later
#include "render.h"

#include "base/units.h"
#include "base/utf8.h"

#include <algorithm>

#include <fmt/format.h>

namespace thintrim::host {

namespace {

nlohmann::json optionalNumber(const std::optional<std::uint64_t>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json();
}

nlohmann::json optionalString(const std::string& value) {
    return value.empty() ? nlohmann::json() : nlohmann::json(value);
}

nlohmann::json settingsJson(const std::optional<DiskSettings>& settings) {
    if (!settings)
        return nullptr;
    return {
        {"image", settings->image},
        {"format", optionalString(settings->format)},
        {"bus", optionalString(settings->bus)},
        {"controller", optionalString(settings->controller)},
        {"discard", discardModeName(settings->discard)},
        {"detect_zeroes", optionalString(settings->detectZeroes)},
    };
}

nlohmann::json validUtf8(const nlohmann::json& json) {
    if (json.is_string())
        return escapeInvalidUtf8(json.get<std::string>());
    if (json.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& item : json)
            out.push_back(validUtf8(item));
        return out;
    }
    if (json.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [key, value] : json.items())
            out[escapeInvalidUtf8(key)] = validUtf8(value);
        return out;
    }
    return json;
}

std::string size(const std::optional<std::uint64_t>& bytes, bool exact) {
    if (!bytes)
        return "-";
    return exact ? std::to_string(*bytes) : formatSize(*bytes);
}

std::string diskLabels(const AuditedDisk& disk) {
    return fmt::format("vm=\"{}\",disk=\"{}\",image=\"{}\"", prometheusLabelValue(disk.vm),
                       prometheusLabelValue(disk.disk), prometheusLabelValue(disk.image()));
}

void printTable(std::FILE* out, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()));
        for (std::size_t i = 0; i < row.size(); ++i)
            widths[i] = std::max(widths[i], row[i].size());
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size())
                line += std::string(widths[i] - row[i].size() + 2, ' ');
        }
        fmt::print(out, "{}\n", line);
    }
}

} // namespace

nlohmann::json diskJson(const AuditedDisk& disk) {
    const DiskSettings& settings = disk.effective();
    nlohmann::json findings = nlohmann::json::array();
    for (const HostFinding& finding : disk.findings)
        findings.push_back({{"severity", findingSeverityName(finding.severity)},
                            {"message", finding.message},
                            {"fix", finding.fix}});
    const ImageUsage& usage = disk.usage;
    return {
        {"vm", disk.vm},
        {"vm_name", optionalString(disk.vmName)},
        {"source", disk.source},
        {"disk", disk.disk},
        {"image", settings.image},
        {"volume", optionalString(disk.volume)},
        {"format", optionalString(settings.format)},
        {"bus", optionalString(settings.bus)},
        {"controller", optionalString(settings.controller)},
        {"discard", discardModeName(settings.discard)},
        {"detect_zeroes", optionalString(settings.detectZeroes)},
        {"device_discard_off", optionalString(disk.deviceDiscardOff)},
        {"serial", optionalString(disk.serial)},
        {"running", disk.running.has_value()},
        {"pid", disk.pid ? nlohmann::json(*disk.pid) : nlohmann::json()},
        {"config_file", optionalString(disk.configFile)},
        {"configured", settingsJson(disk.configured)},
        {"running_settings", settingsJson(disk.running)},
        {"pending", settingsJson(disk.pending)},
        {"storage",
         {{"id", optionalString(disk.storage.id)}, {"type", optionalString(disk.storage.type)}}},
        {"image_kind", optionalString(usage.kind)},
        {"allocated_bytes", optionalNumber(usage.allocatedBytes)},
        {"size_bytes", optionalNumber(usage.sizeBytes)},
        {"qcow2_snapshots", usage.qcow2 ? nlohmann::json(usage.qcow2->snapshots) : nullptr},
        {"backing_file", usage.qcow2 ? optionalString(usage.qcow2->backingFile) : nlohmann::json()},
        {"thin_pool",
         optionalString(usage.thinPool.empty() ? disk.storage.thinPool : usage.thinPool)},
        {"thin_pool_discards", usage.thinPoolDiscards
                                   ? nlohmann::json(thinPoolDiscardsName(*usage.thinPoolDiscards))
                                   : nlohmann::json()},
        {"image_note", optionalString(usage.note)},
        {"qemu_version", optionalString(disk.qemuVersion)},
        {"unmap_bytes", disk.unmap ? nlohmann::json(disk.unmap->unmapBytes) : nlohmann::json()},
        {"unmap_operations",
         disk.unmap ? nlohmann::json(disk.unmap->unmapOperations) : nlohmann::json()},
        {"qmp_error", optionalString(disk.qmpError)},
        {"findings", findings},
    };
}

nlohmann::json auditJson(const AuditReport& report) {
    nlohmann::json disks = nlohmann::json::array();
    for (const AuditedDisk& disk : report.disks)
        disks.push_back(diskJson(disk));
    return {{"schema", 1}, {"disks", disks}, {"problems", report.problems}};
}

std::string dumpJson(const nlohmann::json& json) {
    return validUtf8(json).dump(2);
}

void printAudit(std::FILE* out, const AuditReport& report, bool exactBytes) {
    for (const std::string& problem : report.problems)
        fmt::print(stderr, "thintrim-host: {}\n", problem);
    if (report.disks.empty()) {
        fmt::print(out, "No VM disks found.\n");
        return;
    }
    std::vector<std::vector<std::string>> rows{{"VM", "DISK", "BUS", "FORMAT", "DISCARD", "ZEROES",
                                                "ALLOCATED", "SIZE", "STATE", "IMAGE"}};
    for (const AuditedDisk& disk : report.disks) {
        const DiskSettings& settings = disk.effective();
        std::string vm = disk.vm;
        if (!disk.vmName.empty() && disk.vmName != disk.vm)
            vm += fmt::format(" ({})", disk.vmName);
        rows.push_back({vm, disk.disk,
                        settings.bus + (settings.controller.empty() || settings.bus != "scsi"
                                            ? ""
                                            : "/" + settings.controller),
                        settings.format.empty() ? "-" : settings.format,
                        disk.deviceDiscardOff.empty()
                            ? std::string(discardModeName(settings.discard))
                            : fmt::format("{} ({} on device)", discardModeName(settings.discard),
                                          disk.deviceDiscardOff),
                        settings.detectZeroes.empty() ? "-" : settings.detectZeroes,
                        size(disk.usage.allocatedBytes, exactBytes),
                        size(disk.usage.sizeBytes, exactBytes),
                        disk.running ? fmt::format("running (pid {})", *disk.pid) : "stopped",
                        escapeInvalidUtf8(settings.image)});
    }
    printTable(out, rows);
    bool any = false;
    for (const AuditedDisk& disk : report.disks) {
        for (const HostFinding& finding : disk.findings) {
            if (!any)
                fmt::print(out, "\n");
            any = true;
            fmt::print(out, "{} {} {}: {}\n", findingSeverityName(finding.severity), disk.vm,
                       disk.disk, escapeInvalidUtf8(finding.message));
            if (!finding.fix.empty())
                fmt::print(out, "  fix: {}\n", escapeInvalidUtf8(finding.fix));
        }
        if (disk.unmap)
            fmt::print(out,
                       "{}{} {}: QEMU has received {} of discards ({} requests) since it "
                       "started\n",
                       any ? "" : "\n", disk.vm, disk.disk, formatSize(disk.unmap->unmapBytes),
                       disk.unmap->unmapOperations);
        if (disk.unmap)
            any = true;
        if (!disk.qmpError.empty()) {
            fmt::print(out, "{}{} {}: QEMU's counters not read: {}\n", any ? "" : "\n", disk.vm,
                       disk.disk, disk.qmpError);
            any = true;
        }
    }
}

std::string auditMetrics(const AuditReport& report) {
    std::string text;
    auto family = [&](const char* name, const char* type, const char* help, auto value) {
        text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
        for (const AuditedDisk& disk : report.disks) {
            if (auto number = value(disk))
                text += fmt::format("{}{{{}}} {}\n", name, diskLabels(disk), *number);
        }
    };
    family("thintrim_host_disk_discard", "gauge",
           "1 if QEMU passes the guest's discards to the image (discard=unmap), else 0.",
           [](const AuditedDisk& d) -> std::optional<std::uint64_t> {
               return d.passesDiscards() ? 1 : 0;
           });
    family("thintrim_host_disk_running", "gauge", "1 if the disk is attached to a running QEMU.",
           [](const AuditedDisk& d) -> std::optional<std::uint64_t> { return d.running ? 1 : 0; });
    family("thintrim_host_disk_allocated_bytes", "gauge",
           "Bytes the disk's image takes on the host.",
           [](const AuditedDisk& d) { return d.usage.allocatedBytes; });
    family("thintrim_host_disk_size_bytes", "gauge", "The disk's virtual size.",
           [](const AuditedDisk& d) { return d.usage.sizeBytes; });
    family("thintrim_host_disk_qemu_unmap_bytes_total", "counter",
           "Bytes of discards QEMU received for the disk since it started (query-blockstats).",
           [](const AuditedDisk& d) -> std::optional<std::uint64_t> {
               if (!d.unmap)
                   return std::nullopt;
               return d.unmap->unmapBytes;
           });
    family("thintrim_host_disk_findings", "gauge",
           "Findings of the audit for the disk (warnings and errors).",
           [](const AuditedDisk& d) -> std::optional<std::uint64_t> {
               return static_cast<std::uint64_t>(
                   std::count_if(d.findings.begin(), d.findings.end(), [](const HostFinding& f) {
                       return f.severity != FindingSeverity::Info;
                   }));
           });
    return text;
}

nlohmann::json proveJson(const ProveReport& report) {
    nlohmann::json disks = nlohmann::json::array();
    for (const DiskProof& proof : report.disks) {
        nlohmann::json disk = diskJson(proof.disk);
        disk["allocated_bytes_before"] = optionalNumber(proof.before.allocatedBytes);
        disk["allocated_bytes_after"] = optionalNumber(proof.after.allocatedBytes);
        disk["unmap_bytes_before"] = optionalNumber(proof.before.unmapBytes);
        disk["unmap_bytes_after"] = optionalNumber(proof.after.unmapBytes);
        disk["guest_trimmed_bytes"] = optionalNumber(proof.guestTrimmedBytes);
        disk["guest_mount_points"] = proof.guestMountPoints;
        disk["qemu_counts_discards"] = proof.qemuCountsDiscards();
        disk["qemu_received_bytes"] = optionalNumber(proof.qemuReceivedBytes());
        disk["qemu_received_operations"] = optionalNumber(proof.qemuReceivedOperations());
        disk["released_bytes"] = optionalNumber(proof.releasedBytes());
        disk["verdict"] = stopLayerName(proof.verdict);
        disk["explanation"] = proof.explanation;
        disks.push_back(std::move(disk));
    }
    nlohmann::json filesystems = nlohmann::json::array();
    for (const auto& filesystem : report.guest.filesystems)
        filesystems.push_back(
            {{"mount_point", filesystem.mountPoint},
             {"trimmed_bytes", filesystem.trimmedBytes},
             {"reached_disk_bytes", optionalNumber(filesystem.reachedDiskBytes)}});
    return {
        {"schema", 1},
        {"vm", report.vm},
        {"qmp_socket", report.qmpSocket},
        {"guest_agent_socket", report.guestAgentSocket},
        {"guest",
         {{"command", report.guest.command},
          {"exit_code", report.guest.exitCode},
          {"trimmed_bytes", report.guest.trimmedBytes()},
          {"reached_disk_bytes", optionalNumber(report.guest.reachedDiskBytes())},
          {"filesystems", filesystems},
          {"error", optionalString(report.guest.error)},
          {"fsinfo_error", optionalString(report.fsinfoError)},
          {"unplaced_trimmed_bytes", report.unplacedTrimmedBytes}}},
        {"disks", disks},
    };
}

void printProve(std::FILE* out, const ProveReport& report, bool exactBytes) {
    const GuestTrim& guest = report.guest;
    fmt::print(out, "VM {}: the guest ran `{}` (exit {}): {} trimmed", report.vm, guest.command,
               guest.exitCode, size(guest.trimmedBytes(), exactBytes));
    if (auto reached = guest.reachedDiskBytes())
        fmt::print(out, ", {} reached its virtual disks (its receipts)",
                   size(*reached, exactBytes));
    fmt::print(out, "\n");
    for (const auto& filesystem : guest.filesystems)
        fmt::print(
            out, "  {}: {} trimmed{}\n", escapeInvalidUtf8(filesystem.mountPoint),
            size(filesystem.trimmedBytes, exactBytes),
            filesystem.reachedDiskBytes
                ? fmt::format(", {} at the disk", size(filesystem.reachedDiskBytes, exactBytes))
                : std::string());
    if (guest.exitCode != 0 && !guest.error.empty())
        fmt::print(out, "  guest stderr: {}\n", escapeInvalidUtf8(guest.error));
    if (!report.fsinfoError.empty())
        fmt::print(out,
                   "  the guest's filesystems could not be placed on disks (guest-get-fsinfo: "
                   "{}): every disk is judged by the guest's total\n",
                   escapeInvalidUtf8(report.fsinfoError));
    else if (report.unplacedTrimmedBytes > 0)
        fmt::print(out,
                   "  {} trimmed on filesystems the guest agent placed on no disk of this VM "
                   "(no serial to match)\n",
                   size(report.unplacedTrimmedBytes, exactBytes));
    fmt::print(out, "\n");
    std::vector<std::vector<std::string>> rows{{"DISK", "GUEST TRIMMED", "QEMU RECEIVED",
                                                "ALLOC BEFORE", "ALLOC AFTER", "GAVE BACK",
                                                "STOPPED AT"}};
    for (const DiskProof& proof : report.disks)
        rows.push_back({proof.disk.disk, size(proof.guestTrimmedBytes, exactBytes),
                        proof.qemuCountsDiscards() ? size(proof.qemuReceivedBytes(), exactBytes)
                                                   : std::string("uncounted"),
                        size(proof.before.allocatedBytes, exactBytes),
                        size(proof.after.allocatedBytes, exactBytes),
                        size(proof.releasedBytes(), exactBytes),
                        std::string(stopLayerName(proof.verdict))});
    printTable(out, rows);
    fmt::print(out, "\n");
    for (const DiskProof& proof : report.disks)
        fmt::print(out, "{}: {}\n", proof.disk.disk, escapeInvalidUtf8(proof.explanation));
}

std::string proveMetrics(const ProveReport& report) {
    std::string text;
    auto family = [&](const char* name, const char* help, auto value) {
        text += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
        for (const DiskProof& proof : report.disks) {
            if (auto number = value(proof))
                text += fmt::format("{}{{{}}} {}\n", name, diskLabels(proof.disk), *number);
        }
    };
    family("thintrim_host_prove_guest_trimmed_bytes",
           "Bytes the guest reported trimmed in the last prove on the disk's filesystems (all "
           "its filesystems when they could not be placed on disks).",
           [&](const DiskProof& p) -> std::optional<std::uint64_t> {
               return p.guestTrimmedBytes.value_or(report.guest.trimmedBytes());
           });
    family("thintrim_host_prove_qemu_received_bytes",
           "Bytes of discards QEMU received for the disk during the last prove.",
           [](const DiskProof& p) { return p.qemuReceivedBytes(); });
    family("thintrim_host_prove_released_bytes",
           "Bytes the disk's image gave back during the last prove.",
           [](const DiskProof& p) { return p.releasedBytes(); });
    text += "# HELP thintrim_host_prove_verdict 1 for the layer where the freed space stopped "
            "in the last prove (none: it came back).\n# TYPE thintrim_host_prove_verdict gauge\n";
    for (const DiskProof& proof : report.disks)
        text += fmt::format("thintrim_host_prove_verdict{{{},layer=\"{}\"}} 1\n",
                            diskLabels(proof.disk), stopLayerName(proof.verdict));
    return text;
}

} // namespace thintrim::host
