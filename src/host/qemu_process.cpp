// SPDX-License-Identifier: GPL-2.0-or-later
#include "qemu_process.h"

#include "base/error.h"
#include "base/text.h"

#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace thintrim::host {

std::vector<std::pair<std::string, std::string>> parseQemuOptions(std::string_view text,
                                                                  std::string_view impliedKey) {
    std::vector<std::string> items{""};
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == ',') {
            if (i + 1 < text.size() && text[i + 1] == ',') {
                items.back() += ',';
                ++i;
            } else {
                items.emplace_back();
            }
        } else {
            items.back() += text[i];
        }
    }
    std::vector<std::pair<std::string, std::string>> options;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const std::string& item = items[i];
        const auto equals = item.find('=');
        if (equals == std::string::npos) {
            if (i == 0 && !impliedKey.empty())
                options.emplace_back(std::string(impliedKey), item);
            else if (!item.empty())
                options.emplace_back(item, "on"); // a bare flag
        } else {
            options.emplace_back(item.substr(0, equals), item.substr(equals + 1));
        }
    }
    return options;
}

std::vector<std::string> splitCommandLine(std::string_view nulSeparated) {
    std::vector<std::string> args;
    std::size_t start = 0;
    while (start < nulSeparated.size()) {
        std::size_t end = nulSeparated.find('\0', start);
        if (end == std::string_view::npos)
            end = nulSeparated.size();
        args.emplace_back(nulSeparated.substr(start, end - start));
        start = end + 1;
    }
    return args;
}

namespace {

using Options = std::map<std::string, std::string>;

Options toMap(const std::vector<std::pair<std::string, std::string>>& list) {
    Options map;
    for (const auto& [key, value] : list)
        map[key] = value;
    return map;
}

std::string get(const Options& options, const std::string& key) {
    auto found = options.find(key);
    return found == options.end() ? std::string() : found->second;
}

// A JSON value as QEMU's option text: strings as they are, numbers and
// booleans as QEMU's keyval would print them.
std::string jsonScalar(const nlohmann::json& value) {
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_boolean())
        return value.get<bool>() ? "on" : "off";
    return value.dump();
}

// `-device` in either syntax: JSON (libvirt since 7.x) or key=value.
Options parseDevice(int pid, const std::string& text) {
    if (!text.starts_with('{'))
        return toMap(parseQemuOptions(text, "driver"));
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded() || !json.is_object())
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("process {}: -device {} is not valid JSON", pid, text));
    Options options;
    for (const auto& [key, value] : json.items()) {
        if (!value.is_structured())
            options[key] = jsonScalar(value);
    }
    return options;
}

bool isFormatDriver(std::string_view driver) {
    for (std::string_view format : {"qcow2", "raw", "vmdk", "qed", "vdi", "vpc", "vhdx", "luks"}) {
        if (driver == format)
            return true;
    }
    return false;
}

// The -blockdev graph: every node by name, inline children given names of
// their own ("parent/file") so chains can be followed the same way.
class BlockGraph {
public:
    void add(int pid, const std::string& text) {
        auto json = nlohmann::json::parse(text, nullptr, false);
        if (json.is_discarded() || !json.is_object())
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("process {}: -blockdev {} is not valid JSON", pid, text));
        // The key=value form: "driver=file,node-name=x,filename=..." with
        // dotted keys for children; only the flat ones are read.
        insert(json, json.value("node-name", fmt::format("#anonymous{}", nodes_.size())));
    }
    void addKeyValue(const std::string& text) {
        nlohmann::json node = nlohmann::json::object();
        for (const auto& [key, value] : parseQemuOptions(text, ""))
            node[key] = value;
        insert(node, node.value("node-name", fmt::format("#anonymous{}", nodes_.size())));
    }
    [[nodiscard]] bool has(const std::string& name) const { return nodes_.contains(name); }

    // The nodes from `top` down its "file" links (not "backing": a
    // backing image's discard setting does not decide whether the top
    // frees its clusters).
    [[nodiscard]] std::vector<const nlohmann::json*> chain(const std::string& top) const {
        std::vector<const nlohmann::json*> nodes;
        std::string name = top;
        while (nodes.size() < 16) {
            auto found = nodes_.find(name);
            if (found == nodes_.end())
                break;
            nodes.push_back(&found->second);
            auto file = children_.find(name);
            if (file == children_.end())
                break;
            name = file->second;
        }
        return nodes;
    }

private:
    void insert(nlohmann::json node, const std::string& name) {
        if (node.contains("file")) {
            nlohmann::json file = node["file"];
            if (file.is_string()) {
                children_[name] = file.get<std::string>();
            } else if (file.is_object()) {
                const std::string childName = file.value("node-name", name + "/file");
                insert(file, childName);
                children_[name] = childName;
            }
        }
        node.erase("file");
        node.erase("backing");
        nodes_[name] = std::move(node);
    }

    std::map<std::string, nlohmann::json> nodes_;
    std::map<std::string, std::string> children_;
};

std::string nodeString(const nlohmann::json& node, const char* key) {
    auto found = node.find(key);
    if (found == node.end())
        return {};
    return jsonScalar(*found);
}

// What a -blockdev chain amounts to: discards reach the image only when
// every node on the way lets them through (each checks its own flag).
DiskSettings settingsOfChain(const std::vector<const nlohmann::json*>& chain) {
    DiskSettings settings;
    bool allUnmap = !chain.empty();
    for (const nlohmann::json* node : chain) {
        const std::string driver = nodeString(*node, "driver");
        if (parseDiscardMode(nodeString(*node, "discard")) != DiscardMode::Unmap)
            allUnmap = false;
        if (settings.detectZeroes.empty())
            settings.detectZeroes = nodeString(*node, "detect-zeroes");
        if (settings.format.empty() && isFormatDriver(driver))
            settings.format = driver;
        if (driver == "file" || driver == "host_device" || driver == "host_cdrom")
            settings.image = nodeString(*node, "filename");
        else if (driver == "rbd")
            settings.image =
                fmt::format("rbd:{}/{}", nodeString(*node, "pool"), nodeString(*node, "image"));
        else if (settings.image.empty() && (driver == "iscsi" || driver == "nbd"))
            settings.image = driver;
    }
    settings.discard = allUnmap ? DiscardMode::Unmap : DiscardMode::Ignore;
    return settings;
}

std::string busOfDeviceDriver(std::string_view driver) {
    if (driver.starts_with("scsi-hd") || driver == "scsi-block" || driver == "scsi-disk" ||
        driver == "scsi-generic")
        return "scsi";
    if (driver.starts_with("virtio-blk") || driver.starts_with("vhost-user-blk"))
        return "virtio";
    if (driver == "ide-hd" || driver == "ide-drive")
        return "ide";
    if (driver == "usb-storage")
        return "usb";
    if (driver == "nvme")
        return "nvme";
    return {};
}

// The device option that keeps discard from the guest: virtio-blk's
// discard=off (no VIRTIO_BLK_F_DISCARD), or discard_granularity=0, with
// which a SCSI disk reports no unmap support (the guest sets
// provisioning_mode=full) and virtio-blk none either.
std::string deviceDiscardOff(const Options& device) {
    const std::string discard = get(device, "discard");
    if (busOfDeviceDriver(get(device, "driver")) == "virtio" &&
        (discard == "off" || discard == "false" || discard == "no"))
        return "discard=" + discard;
    if (get(device, "discard_granularity") == "0")
        return "discard_granularity=0";
    return {};
}

} // namespace

std::optional<QemuProcess> parseQemuCommandLine(int pid, const std::vector<std::string>& args) {
    if (args.empty())
        return std::nullopt;
    const std::string program = std::filesystem::path(args[0]).filename();
    if (!program.starts_with("qemu-system") && program != "kvm" && program != "qemu-kvm")
        return std::nullopt;
    QemuProcess process;
    process.pid = pid;
    std::vector<Options> drives;
    std::vector<Options> devices;
    std::map<std::string, Options> chardevs;
    std::vector<Options> monitors;
    BlockGraph graph;
    for (std::size_t i = 1; i + 1 < args.size(); ++i) {
        std::string option = args[i];
        if (option.starts_with("--"))
            option.erase(0, 1);
        const std::string& value = args[i + 1];
        bool consumed = true;
        if (option == "-id") {
            process.vmid = value;
        } else if (option == "-name") {
            const Options name = toMap(parseQemuOptions(value, "guest"));
            process.name = get(name, "guest");
        } else if (option == "-drive") {
            drives.push_back(toMap(parseQemuOptions(value, "")));
        } else if (option == "-blockdev") {
            if (value.starts_with('{'))
                graph.add(pid, value);
            else
                graph.addKeyValue(value);
        } else if (option == "-device") {
            devices.push_back(parseDevice(pid, value));
        } else if (option == "-chardev") {
            Options chardev = toMap(parseQemuOptions(value, "backend"));
            chardevs[get(chardev, "id")] = chardev;
        } else if (option == "-mon") {
            monitors.push_back(toMap(parseQemuOptions(value, "chardev")));
        } else if (option == "-qmp") {
            // "unix:PATH,server=on,wait=off"
            const Options qmp = toMap(parseQemuOptions(value, "address"));
            const std::string address = get(qmp, "address");
            if (address.starts_with("unix:"))
                process.qmpSocket = address.substr(5);
        } else {
            consumed = false;
        }
        if (consumed)
            ++i;
    }
    for (const Options& monitor : monitors) {
        if (get(monitor, "mode") != "control")
            continue;
        auto chardev = chardevs.find(get(monitor, "chardev"));
        if (chardev != chardevs.end() && process.qmpSocket.empty())
            process.qmpSocket = get(chardev->second, "path");
    }
    std::map<std::string, const Options*> devicesById;
    for (const Options& device : devices) {
        devicesById[get(device, "id")] = &device;
        if (get(device, "driver") == "virtserialport" &&
            get(device, "name") == "org.qemu.guest_agent.0") {
            auto chardev = chardevs.find(get(device, "chardev"));
            if (chardev != chardevs.end())
                process.guestAgentSocket = get(chardev->second, "path");
        }
    }
    // The controller a device sits on: "bus=scsihw0.0" names the
    // controller's id; with no bus, QEMU picks the first of its kind.
    auto controllerOf = [&](const Options& device, std::string_view kind) -> std::string {
        std::string bus = get(device, "bus");
        bus = bus.substr(0, bus.find('.'));
        if (auto found = devicesById.find(bus); found != devicesById.end())
            return get(*found->second, "driver");
        for (const Options& candidate : devices) {
            const std::string driver = get(candidate, "driver");
            if (kind == "scsi" &&
                (driver.starts_with("virtio-scsi") || driver.starts_with("lsi") ||
                 driver == "megasas" || driver == "pvscsi" || driver.starts_with("mptsas")))
                return driver;
        }
        return {};
    };
    auto busOfDevice = [&](const Options& device) {
        std::string bus = busOfDeviceDriver(get(device, "driver"));
        if (bus == "ide") {
            const std::string controller = controllerOf(device, "ide");
            if (controller == "ahci" || controller == "ich9-ahci")
                bus = "sata";
        }
        return bus;
    };
    auto attach = [&](const std::string& driveId, DiskSettings settings, bool fromBlockdev) {
        for (const Options& device : devices) {
            if (get(device, "drive") != driveId)
                continue;
            const std::string bus = busOfDevice(device);
            if (bus.empty())
                return; // a CD-ROM, a floppy, a pflash
            settings.bus = bus;
            if (bus == "scsi")
                settings.controller = controllerOf(device, "scsi");
            std::string name = get(device, "id");
            if (name.empty())
                name = driveId.starts_with("drive-") ? driveId.substr(6) : driveId;
            QemuDisk disk;
            disk.name = name;
            disk.driveId = driveId;
            disk.settings = std::move(settings);
            disk.fromBlockdev = fromBlockdev;
            disk.deviceDriver = get(device, "driver");
            disk.serial = get(device, "serial");
            disk.deviceDiscardOff = deviceDiscardOff(device);
            process.disks.push_back(std::move(disk));
            return;
        }
    };
    for (const Options& drive : drives) {
        if (get(drive, "media") == "cdrom" || get(drive, "file").empty())
            continue;
        DiskSettings settings;
        settings.image = get(drive, "file");
        settings.format = get(drive, "format");
        settings.discard = parseDiscardMode(get(drive, "discard")).value_or(DiscardMode::Ignore);
        settings.detectZeroes = get(drive, "detect-zeroes");
        const std::string interface = get(drive, "if");
        const std::string id = get(drive, "id");
        if (interface == "none") {
            attach(id, std::move(settings), false);
        } else if (interface == "virtio" || interface == "scsi" || interface == "ide" ||
                   interface.empty()) {
            settings.bus = interface.empty() ? "ide" : interface;
            if (settings.bus == "scsi")
                settings.controller = "lsi53c895a";
            QemuDisk disk;
            disk.name = id.empty() ? settings.bus : id;
            disk.driveId = id;
            disk.settings = std::move(settings);
            disk.serial = get(drive, "serial");
            process.disks.push_back(std::move(disk));
        }
    }
    for (const Options& device : devices) {
        const std::string drive = get(device, "drive");
        if (!drive.empty() && graph.has(drive)) {
            DiskSettings settings = settingsOfChain(graph.chain(drive));
            attach(drive, std::move(settings), true);
        }
    }
    return process;
}

std::vector<QemuProcess> scanQemuProcesses(const std::filesystem::path& procRoot,
                                           std::optional<int> onlyPid) {
    std::vector<int> pids;
    if (onlyPid) {
        pids.push_back(*onlyPid);
    } else {
        std::error_code error;
        for (const auto& entry : std::filesystem::directory_iterator(procRoot, error)) {
            if (auto pid = parseDecimal<int>(entry.path().filename().string()))
                pids.push_back(*pid);
        }
        if (error)
            throwSystemError(fmt::format("listing {}", procRoot.string()), error.value());
        std::sort(pids.begin(), pids.end());
    }
    std::vector<QemuProcess> processes;
    for (int pid : pids) {
        // comm first: reading another process's cmdline takes its mm lock and
        // can stall behind a process stuck in the kernel; comm does not.
        // QEMU's main thread keeps the program's name ("kvm", "qemu-system-x86")
        // unless started with -name ...,process=NAME: such a QEMU is found with --pid.
        if (!onlyPid) {
            std::ifstream commFile(procRoot / std::to_string(pid) / "comm");
            std::string comm;
            if (commFile && std::getline(commFile, comm) && !comm.starts_with("qemu") &&
                comm != "kvm")
                continue;
        }
        std::ifstream file(procRoot / std::to_string(pid) / "cmdline", std::ios::binary);
        if (!file) {
            if (onlyPid)
                throw Error(ErrorCode::InvalidArgument,
                            fmt::format("no process {} under {}", pid, procRoot.string()));
            continue;
        }
        std::ostringstream text;
        text << file.rdbuf();
        auto process = parseQemuCommandLine(pid, splitCommandLine(text.str()));
        if (process)
            processes.push_back(std::move(*process));
        else if (onlyPid)
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("process {} is not a QEMU system emulator", pid));
    }
    return processes;
}

} // namespace thintrim::host
