// SPDX-License-Identifier: GPL-2.0-or-later
#include "vm_config.h"

#include "base/error.h"
#include "base/text.h"

#include <fmt/format.h>

namespace thintrim::host {

std::optional<DiscardMode> parseDiscardMode(std::string_view text) {
    // Proxmox's and libvirt's spellings, then QEMU's.
    if (text == "on")
        return DiscardMode::Unmap;
    if (text == "off")
        return DiscardMode::Ignore;
    return kDiscardModes.find(text);
}

namespace {

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos)
        return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

std::vector<std::string_view> splitOn(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = text.find(separator, start);
        parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
        if (end == std::string_view::npos)
            return parts;
        start = end + 1;
    }
}

// Proxmox's disk keys: ide0-3, sata0-5, scsi0-30, virtio0-15.
std::optional<std::string> pveBusOfKey(std::string_view key) {
    for (std::string_view bus : {"scsi", "virtio", "sata", "ide"}) {
        if (key.starts_with(bus) && key.size() > bus.size() &&
            parseDecimal<unsigned>(key.substr(bus.size())))
            return std::string(bus);
    }
    return std::nullopt;
}

std::string formatFromName(std::string_view name) {
    for (std::string_view format : {"qcow2", "raw", "vmdk", "qed", "vdi"}) {
        if (name.ends_with(fmt::format(".{}", format)))
            return std::string(format);
    }
    return {};
}

} // namespace

std::vector<PveStorage> parsePveStorageConfig(std::string_view text, std::string_view origin) {
    std::vector<PveStorage> storages;
    std::size_t lineNumber = 0;
    for (std::string_view line : splitOn(text, '\n')) {
        ++lineNumber;
        const std::string_view content = trim(line);
        if (content.empty() || content.starts_with('#'))
            continue;
        const bool indented = line.front() == ' ' || line.front() == '\t';
        if (!indented) {
            const auto colon = content.find(':');
            if (colon == std::string_view::npos)
                throw Error(ErrorCode::InvalidConfig,
                            fmt::format("{}:{}: expected \"TYPE: ID\", got \"{}\"", origin,
                                        lineNumber, content));
            storages.push_back({std::string(trim(content.substr(0, colon))),
                                std::string(trim(content.substr(colon + 1))),
                                {}});
            continue;
        }
        if (storages.empty())
            throw Error(
                ErrorCode::InvalidConfig,
                fmt::format("{}:{}: property outside a storage section", origin, lineNumber));
        const auto space = content.find_first_of(" \t");
        const std::string key(content.substr(0, space));
        const std::string value(space == std::string_view::npos ? std::string_view{}
                                                                : trim(content.substr(space)));
        // A flag such as "sparse" has no value: present means 1.
        storages.back().properties[key] = value.empty() ? "1" : value;
    }
    return storages;
}

ResolvedVolume resolvePveVolume(const std::vector<PveStorage>& storages, std::string_view volume) {
    ResolvedVolume resolved;
    if (volume.starts_with('/')) {
        resolved.path = volume;
        resolved.format = formatFromName(volume);
        resolved.storage = {"", volume.starts_with("/dev/") ? "block" : "file", ""};
        if (resolved.format.empty())
            resolved.format = "raw";
        return resolved;
    }
    const auto colon = volume.find(':');
    const std::string storageId(volume.substr(0, colon));
    std::string_view name = colon == std::string_view::npos ? "" : volume.substr(colon + 1);
    // A linked clone names its base first: "base-100-disk-0/vm-101-disk-0"
    // (block storages) or "100/base-100-disk-0.qcow2/101/vm-101-disk-0.qcow2".
    const PveStorage* storage = nullptr;
    for (const PveStorage& candidate : storages) {
        if (candidate.id == storageId)
            storage = &candidate;
    }
    resolved.storage.id = storageId;
    resolved.format = formatFromName(name);
    if (storage == nullptr) {
        resolved.storage.type = "unknown";
        return resolved;
    }
    resolved.storage.type = storage->type;
    auto property = [&](const char* key) {
        auto found = storage->properties.find(key);
        return found == storage->properties.end() ? std::string() : found->second;
    };
    const std::string_view leaf =
        name.substr(name.rfind('/') == std::string_view::npos ? 0 : name.rfind('/') + 1);
    const std::string& type = storage->type;
    if (type == "dir" || type == "nfs" || type == "cifs" || type == "btrfs") {
        std::string base = property("path");
        if (base.empty())
            base = fmt::format("/mnt/pve/{}", storageId);
        // "VMID/file" or, for a linked clone, "BASEVMID/base.qcow2/VMID/file".
        const auto parts = splitOn(name, '/');
        std::string_view owner = parts.size() >= 2 ? parts[parts.size() - 2] : "";
        resolved.path = fmt::format("{}/images/{}/{}", base, owner, leaf);
    } else if (type == "lvmthin" || type == "lvm") {
        resolved.path = fmt::format("/dev/{}/{}", property("vgname"), leaf);
        if (type == "lvmthin")
            resolved.storage.thinPool =
                fmt::format("{}/{}", property("vgname"), property("thinpool"));
    } else if (type == "zfspool") {
        resolved.path = fmt::format("/dev/zvol/{}/{}", property("pool"), leaf);
    } else if (type == "rbd") {
        std::string pool = property("pool");
        resolved.path = fmt::format("rbd:{}/{}", pool.empty() ? "rbd" : pool, leaf);
    }
    if (resolved.format.empty())
        resolved.format = "raw";
    return resolved;
}

std::optional<std::string> PveDriveLine::option(std::string_view name) const {
    for (const auto& [optionKey, value] : options) {
        if (optionKey == name)
            return value;
    }
    return std::nullopt;
}

std::string PveDriveLine::withOption(std::string_view name, std::string_view value) const {
    std::string line = volume;
    bool replaced = false;
    for (const auto& [optionKey, current] : options) {
        const bool isIt = optionKey == name;
        line += fmt::format(",{}={}", optionKey, isIt ? std::string(value) : current);
        replaced = replaced || isIt;
    }
    if (!replaced)
        line += fmt::format(",{}={}", name, value);
    return line;
}

std::optional<PveDriveLine> parsePveDriveLine(std::string_view key, std::string_view value) {
    PveDriveLine drive;
    drive.key = key;
    bool first = true;
    for (std::string_view item : splitOn(value, ',')) {
        item = trim(item);
        const auto equals = item.find('=');
        if (first && equals == std::string_view::npos) {
            drive.volume = item;
        } else if (equals != std::string_view::npos) {
            std::string optionKey(item.substr(0, equals));
            std::string optionValue(item.substr(equals + 1));
            if (optionKey == "file" || optionKey == "volume")
                drive.volume = optionValue;
            else
                drive.options.emplace_back(std::move(optionKey), std::move(optionValue));
        }
        first = false;
    }
    if (drive.volume.empty() || drive.volume == "none" || drive.option("media") == "cdrom" ||
        drive.volume == "cdrom")
        return std::nullopt;
    return drive;
}

PveVmConfig parsePveVmConfig(std::string_view text, std::string_view vmid) {
    PveVmConfig config;
    config.vmid = vmid;
    enum class Section { Current, Pending, Snapshot } section = Section::Current;
    for (std::string_view line : splitOn(text, '\n')) {
        line = trim(line);
        if (line.empty() || line.starts_with('#'))
            continue;
        if (line.starts_with('[') && line.ends_with(']')) {
            const std::string_view name = line.substr(1, line.size() - 2);
            if (name == "PENDING") {
                section = Section::Pending;
            } else if (name.starts_with("special:")) {
                section = Section::Snapshot;
            } else {
                section = Section::Snapshot;
                config.snapshots.emplace_back(name);
            }
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos)
            continue;
        const std::string key(trim(line.substr(0, colon)));
        const std::string_view value = trim(line.substr(colon + 1));
        if (section == Section::Pending) {
            config.pending[key] = value;
            continue;
        }
        if (section == Section::Snapshot)
            continue;
        if (key == "name")
            config.name = value;
        else if (key == "scsihw")
            config.scsihw = value;
        else if (pveBusOfKey(key)) {
            if (auto drive = parsePveDriveLine(key, value))
                config.drives.push_back(std::move(*drive));
        }
    }
    return config;
}

std::string pveScsiControllerModel(std::string_view scsihw) {
    if (scsihw.empty() || scsihw == "lsi")
        return "lsi53c895a";
    if (scsihw == "virtio-scsi-single")
        return "virtio-scsi-pci";
    return std::string(scsihw);
}

namespace {

// libvirt's controller models, as QEMU devices.
std::string libvirtScsiModel(std::string_view model) {
    if (model == "virtio-scsi" || model == "virtio-transitional" ||
        model == "virtio-non-transitional")
        return "virtio-scsi-pci";
    if (model == "lsilogic" || model.empty())
        return "lsi53c895a";
    if (model == "lsisas1078")
        return "megasas";
    if (model == "lsisas1068")
        return "mptsas1068";
    if (model == "vmpvscsi")
        return "pvscsi";
    return std::string(model);
}

} // namespace

LibvirtDomain parseLibvirtDomain(const XmlElement& domain) {
    if (domain.name != "domain")
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("root element is <{}>, not <domain>", domain.name));
    LibvirtDomain parsed;
    if (const XmlElement* name = domain.child("name"))
        parsed.name = trim(name->text);
    if (const XmlElement* uuid = domain.child("uuid"))
        parsed.uuid = trim(uuid->text);
    const XmlElement* devices = domain.child("devices");
    if (devices == nullptr)
        return parsed;
    std::map<std::string, std::string> scsiModels; // controller index -> QEMU device
    for (const XmlElement* controller : devices->childrenNamed("controller")) {
        if (controller->attribute("type") == "scsi")
            scsiModels[controller->attribute("index").value_or("0")] =
                libvirtScsiModel(controller->attribute("model").value_or(""));
    }
    for (const XmlElement* disk : devices->childrenNamed("disk")) {
        const std::string device = disk->attribute("device").value_or("disk");
        if (device != "disk" && device != "lun")
            continue;
        LibvirtDisk entry;
        entry.sourceKind = disk->attribute("type").value_or("file");
        if (const XmlElement* target = disk->child("target")) {
            entry.target = target->attribute("dev").value_or("");
            entry.settings.bus = target->attribute("bus").value_or("");
        }
        if (const XmlElement* driver = disk->child("driver")) {
            entry.settings.format = driver->attribute("type").value_or("");
            if (auto discard = driver->attribute("discard")) {
                entry.discardSet = true;
                entry.settings.discard = parseDiscardMode(*discard).value_or(DiscardMode::Ignore);
            }
            entry.settings.detectZeroes = driver->attribute("detect_zeroes").value_or("");
        }
        if (const XmlElement* source = disk->child("source")) {
            if (auto file = source->attribute("file"))
                entry.settings.image = *file;
            else if (auto dev = source->attribute("dev"))
                entry.settings.image = *dev;
            else if (auto name = source->attribute("name"))
                entry.settings.image =
                    fmt::format("{}:{}", source->attribute("protocol").value_or("network"), *name);
            else if (auto volume = source->attribute("volume"))
                entry.settings.image =
                    fmt::format("{}/{}", source->attribute("pool").value_or(""), *volume);
        }
        if (entry.settings.bus == "scsi") {
            std::string index = "0";
            if (const XmlElement* address = disk->child("address"))
                index = address->attribute("controller").value_or("0");
            auto model = scsiModels.find(index);
            entry.settings.controller =
                model == scsiModels.end() ? libvirtScsiModel("") : model->second;
        }
        parsed.disks.push_back(std::move(entry));
    }
    return parsed;
}

} // namespace thintrim::host
