// SPDX-License-Identifier: GPL-2.0-or-later
#include "stack/block_stack.h"

#include "base/error.h"
#include "base/text.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <system_error>

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace thintrim {

namespace fs = std::filesystem;

namespace {

// The first line of a sysfs attribute; nullopt when the file is missing or
// unreadable (devices vanish while we walk, captures leave files out).
std::optional<std::string> readAttribute(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line))
        return std::nullopt;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
        line.pop_back();
    return line;
}

std::string readText(const fs::path& file) {
    return readAttribute(file).value_or("");
}

// A limit the kernel does not show reads as 0, so that "cannot tell" never
// counts as "passes discards".
std::uint64_t readCount(const fs::path& file) {
    auto text = readAttribute(file);
    return text ? parseDecimal<std::uint64_t>(*text).value_or(0) : 0;
}

std::optional<DeviceNumber> tryParseDeviceNumber(std::string_view text) {
    auto colon = text.find(':');
    if (colon == std::string_view::npos)
        return std::nullopt;
    auto major = parseDecimal<unsigned>(text.substr(0, colon));
    auto minor = parseDecimal<unsigned>(text.substr(colon + 1));
    if (!major || !minor)
        return std::nullopt;
    return DeviceNumber{*major, *minor};
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
    std::string out;
    for (const std::string& item : items) {
        if (!out.empty())
            out += separator;
        out += item;
    }
    return out;
}

// LVM names a dm device "VG-LV" or "VG-LV-LAYER", doubling every '-' inside
// the VG and LV names so that a single '-' always separates components.
struct LvmDmName {
    std::string vg;
    std::string lv;
    std::string layer; // "tpool", "real", ... or empty
};

std::optional<LvmDmName> splitLvmDmName(std::string_view dmName) {
    std::vector<std::string> parts(1);
    for (std::size_t i = 0; i < dmName.size(); ++i) {
        if (dmName[i] != '-') {
            parts.back() += dmName[i];
        } else if (i + 1 < dmName.size() && dmName[i + 1] == '-') {
            parts.back() += '-';
            ++i;
        } else {
            parts.emplace_back();
        }
    }
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        return std::nullopt;
    return LvmDmName{parts[0], parts[1], parts.size() == 3 ? parts[2] : ""};
}

std::string lvmDmNameOf(std::string_view vg, std::string_view lv) {
    std::string name;
    for (char c : vg)
        name += c == '-' ? "--" : std::string(1, c);
    name += '-';
    for (char c : lv)
        name += c == '-' ? "--" : std::string(1, c);
    return name;
}

// An LVM dm uuid is "LVM-" followed by the VG and LV ids (no dashes), then
// "-LAYER" for LVM's hidden sub-devices: "tpool", "tdata", "tmeta", "pool"...
std::string_view lvmUuidLayer(std::string_view uuid) {
    if (!uuid.starts_with("LVM-"))
        return {};
    auto dash = uuid.find('-', 4);
    return dash == std::string_view::npos ? std::string_view{} : uuid.substr(dash + 1);
}

bool isThinPool(const fs::path& deviceDir) {
    return lvmUuidLayer(readText(deviceDir / "dm" / "uuid")) == "tpool";
}

enum class DiskBus { Other, VirtioBlk, Scsi };

// What the verdict's sentences need beyond a Layer, and the tree shape that
// the flat depth-first list only implies.
struct Node {
    std::optional<std::size_t> parent;
    std::vector<std::size_t> children;
    std::string dmName;
    bool thinPool = false;
    std::string mdLevel;
    DiskBus bus = DiskBus::Other;
    std::string provisioningMode; // SCSI disks: "unmap", "full", "writesame_16"...
};

struct WalkedStack {
    std::vector<Layer> layers;
    std::vector<Node> nodes;
};

class StackWalker {
public:
    explicit StackWalker(const SystemPaths& paths) : paths_(paths) {}

    void walkTop(const DeviceNumber& device) {
        fs::path link = paths_.sys(fs::path("dev/block") / device.toString());
        std::error_code error;
        fs::path dir = fs::canonical(link, error);
        if (error)
            throw Error(ErrorCode::InvalidArgument,
                        fmt::format("block device {} is not in sysfs ({}: {})", device.toString(),
                                    link.string(), error.message()));
        std::vector<fs::path> ancestors{dir};
        visit(dir, 0, std::nullopt, ancestors);
    }

    [[nodiscard]] WalkedStack take() { return std::move(stack_); }

private:
    std::size_t visit(const fs::path& dir, unsigned depth, std::optional<std::size_t> parent,
                      std::vector<fs::path>& ancestors) {
        const bool isPartition = fs::exists(dir / "partition");
        // A partition has no queue/ of its own: the kernel splits its
        // discards against the disk's limits.
        const fs::path queue = (isPartition ? dir.parent_path() : dir) / "queue";
        const std::vector<fs::path> lower =
            isPartition ? std::vector<fs::path>{dir.parent_path()} : slavesOf(dir);

        Layer layer;
        layer.depth = depth;
        layer.name = dir.filename().string();
        layer.device = tryParseDeviceNumber(readText(dir / "dev")).value_or(DeviceNumber{});
        layer.discardMaxBytes = readCount(queue / "discard_max_bytes");
        layer.discardMaxHwBytes = readCount(queue / "discard_max_hw_bytes");
        layer.discardGranularity = readCount(queue / "discard_granularity");
        layer.sizeBytes = readCount(dir / "size") * 512;
        Node node;
        node.parent = parent;
        identify(dir, isPartition, lower, layer, node);

        const std::size_t index = stack_.layers.size();
        stack_.layers.push_back(std::move(layer));
        stack_.nodes.push_back(std::move(node));

        for (const fs::path& child : lower) {
            // A malformed tree (or a capture gone wrong) must not recurse forever.
            if (std::find(ancestors.begin(), ancestors.end(), child) != ancestors.end())
                continue;
            ancestors.push_back(child);
            std::size_t childIndex = visit(child, depth + 1, index, ancestors);
            ancestors.pop_back();
            stack_.nodes[index].children.push_back(childIndex);
        }
        return index;
    }

    // slaves/ sorted by name so that the output does not depend on readdir order.
    static std::vector<fs::path> slavesOf(const fs::path& dir) {
        std::vector<std::pair<std::string, fs::path>> named;
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(dir / "slaves", error)) {
            std::error_code resolveError;
            fs::path target = fs::canonical(entry.path(), resolveError);
            if (!resolveError)
                named.emplace_back(entry.path().filename().string(), std::move(target));
        }
        std::sort(named.begin(), named.end());
        std::vector<fs::path> slaves;
        for (auto& [name, target] : named)
            slaves.push_back(std::move(target));
        return slaves;
    }

    void identify(const fs::path& dir, bool isPartition, const std::vector<fs::path>& lower,
                  Layer& layer, Node& node) const {
        if (fs::exists(dir / "dm")) {
            node.dmName = readText(dir / "dm" / "name");
            std::string uuid = readText(dir / "dm" / "uuid");
            node.thinPool = lvmUuidLayer(uuid) == "tpool";
            layer.kind = dmKind(uuid, lower);
            layer.detail = node.dmName;
        } else if (fs::exists(dir / "md")) {
            node.mdLevel = readText(dir / "md" / "level");
            layer.kind = LayerKind::Md;
            layer.detail = mdDetail(dir, node.mdLevel);
        } else if (isPartition) {
            layer.kind = LayerKind::Partition;
            layer.detail = fmt::format("partition {} of {}", readText(dir / "partition"),
                                       dir.parent_path().filename().string());
        } else if (fs::exists(dir / "loop") || layer.name.starts_with("loop")) {
            // An unbound loop device has no loop/ directory.
            layer.kind = LayerKind::Loop;
            layer.detail = readText(dir / "loop" / "backing_file");
        } else {
            layer.kind = LayerKind::Disk;
            identifyDisk(dir, layer, node);
        }
    }

    static LayerKind dmKind(std::string_view uuid, const std::vector<fs::path>& lower) {
        if (uuid.starts_with("CRYPT-"))
            return LayerKind::Crypt;
        if (!uuid.starts_with("LVM-"))
            return LayerKind::Dm;
        std::string_view layer = lvmUuidLayer(uuid);
        if (layer == "tpool")
            return LayerKind::Thin;
        // tdata, tmeta, the public pool's linear map, snapshot origins...
        if (!layer.empty())
            return LayerKind::Lvm;
        // A thin LV has a plain LVM uuid like a linear one; only its slave,
        // the pool, tells them apart.
        return std::any_of(lower.begin(), lower.end(), isThinPool) ? LayerKind::Thin
                                                                   : LayerKind::Lvm;
    }

    std::string mdDetail(const fs::path& dir, const std::string& level) const {
        std::string detail = level;
        if (auto disks = readAttribute(dir / "md" / "raid_disks"))
            detail += fmt::format(", {} devices", *disks);
        if (level == "raid4" || level == "raid5" || level == "raid6") {
            // Module parameters are not part of a capture; a live system has them.
            auto safely = readAttribute(
                paths_.sys("module/raid456/parameters/devices_handle_discard_safely"));
            if (safely)
                detail += ", devices_handle_discard_safely=" + *safely;
        }
        return detail;
    }

    static void identifyDisk(const fs::path& dir, Layer& layer, Node& node) {
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(dir / "device" / "scsi_disk", error)) {
            node.bus = DiskBus::Scsi;
            node.provisioningMode = readText(entry.path() / "provisioning_mode");
            if (!node.provisioningMode.empty())
                break;
        }
        if (node.bus == DiskBus::Scsi) {
            layer.detail = node.provisioningMode.empty()
                               ? "scsi disk"
                               : "scsi disk provisioning_mode=" + node.provisioningMode;
            return;
        }
        fs::path device = fs::canonical(dir / "device", error);
        if ((!error && device.filename().string().starts_with("virtio")) ||
            layer.name.starts_with("vd")) {
            node.bus = DiskBus::VirtioBlk;
            layer.detail = "virtio-blk disk";
            return;
        }
        layer.detail = "disk";
    }

    const SystemPaths& paths_;
    WalkedStack stack_;
};

// The verdict's sentences, one function per kind of layer at fault, all
// naming layers the same way through describe().
class VerdictWriter {
public:
    explicit VerdictWriter(const WalkedStack& stack) : layers_(stack.layers), nodes_(stack.nodes) {}

    [[nodiscard]] StackVerdict judge() const {
        std::vector<std::size_t> passing;
        std::vector<std::size_t> failing;
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            if (layers_[i].depth == 0)
                (layers_[i].passesDiscards() ? passing : failing).push_back(i);
        }
        std::vector<std::size_t> culprits;
        for (std::size_t top : failing)
            collectCulprits(top, culprits);

        StackVerdict verdict;
        verdict.eligible = !passing.empty();
        if (!verdict.eligible) {
            verdict.culprits = culprits;
            verdict.reason = culpritSentences(culprits);
            return verdict;
        }
        verdict.reason = passSentence(passing);
        if (!failing.empty()) {
            // A multi-device filesystem still trims the members that pass.
            std::vector<std::string> names;
            for (std::size_t top : failing)
                names.push_back(layers_[top].name);
            verdict.reason += fmt::format(
                ", but member{} {} drop{} them, so {} not trimmed: {}",
                names.size() == 1 ? "" : "s", join(names, ", "), names.size() == 1 ? "s" : "",
                names.size() == 1 ? "it is" : "they are", culpritSentences(culprits));
        }
        return verdict;
    }

private:
    // `index` reports 0. It is at fault unless something under it also
    // reports 0, in which case the fault lies further down.
    void collectCulprits(std::size_t index, std::vector<std::size_t>& culprits) const {
        bool lowerDrops = false;
        for (std::size_t child : nodes_[index].children) {
            if (!layers_[child].passesDiscards()) {
                lowerDrops = true;
                collectCulprits(child, culprits);
            }
        }
        if (lowerDrops)
            return;
        // A disk under several legs is one culprit.
        bool known = std::any_of(culprits.begin(), culprits.end(), [&](std::size_t culprit) {
            return layers_[culprit].device == layers_[index].device;
        });
        if (!known)
            culprits.push_back(index);
    }

    [[nodiscard]] std::string passSentence(const std::vector<std::size_t>& tops) const {
        std::vector<DeviceNumber> devices;
        std::vector<std::string> leaves;
        for (std::size_t top : tops)
            collectPassing(top, devices, leaves);
        return fmt::format("discards pass through {} layer{} down to {}", devices.size(),
                           devices.size() == 1 ? "" : "s", join(leaves, ", "));
    }

    void collectPassing(std::size_t index, std::vector<DeviceNumber>& devices,
                        std::vector<std::string>& leaves) const {
        const Layer& layer = layers_[index];
        if (std::find(devices.begin(), devices.end(), layer.device) == devices.end())
            devices.push_back(layer.device);
        if (nodes_[index].children.empty() &&
            std::find(leaves.begin(), leaves.end(), layer.name) == leaves.end())
            leaves.push_back(layer.name);
        for (std::size_t child : nodes_[index].children)
            collectPassing(child, devices, leaves);
    }

    [[nodiscard]] std::string culpritSentences(const std::vector<std::size_t>& culprits) const {
        std::vector<std::string> sentences;
        for (std::size_t culprit : culprits)
            sentences.push_back(culpritSentence(culprit) + spanClause(culprit));
        return join(sentences, "; ");
    }

    [[nodiscard]] std::string culpritSentence(std::size_t index) const {
        switch (layers_[index].kind) {
        case LayerKind::Disk:
            return diskSentence(index);
        case LayerKind::Partition:
            return fmt::format("{} reports discard_max_bytes=0 and sysfs shows no disk under it",
                               describe(index));
        case LayerKind::Loop:
            return fmt::format("loop device {} has discards disabled (queue/discard_max_bytes=0) "
                               "or its backing file's filesystem cannot punch holes",
                               layers_[index].name);
        case LayerKind::Md:
            return mdSentence(index);
        case LayerKind::Crypt:
            return fmt::format("{} drops discards: add `discard` to its options in /etc/crypttab "
                               "(or open it with cryptsetup --allow-discards) and reopen it",
                               describe(index));
        case LayerKind::Thin:
            return thinSentence(index);
        case LayerKind::Lvm:
            return fmt::format("{} drops discards although every device under it passes them: "
                               "if a device below was changed while it was active (cryptsetup "
                               "refresh --allow-discards), reload its table: `dmsetup reload {} "
                               "--table \"$(dmsetup table {})\" && dmsetup resume {}`; else "
                               "check its segments with `dmsetup table {}`: one target without "
                               "discard support turns them off for the whole volume",
                               describe(index), nodes_[index].dmName, nodes_[index].dmName,
                               nodes_[index].dmName, nodes_[index].dmName);
        case LayerKind::Dm:
            return fmt::format("{} drops discards although every device under it passes them: "
                               "check its target with `dmsetup table {}`",
                               describe(index), nodes_[index].dmName);
        }
        return describe(index) + " drops discards";
    }

    [[nodiscard]] std::string diskSentence(std::size_t index) const {
        const Node& node = nodes_[index];
        const std::string& name = layers_[index].name;
        switch (node.bus) {
        case DiskBus::Scsi:
            return fmt::format(
                "the virtual disk {} does not advertise discard (SCSI{}): enable discard on the "
                "hypervisor — Proxmox: discard=on (the Discard box) on a VirtIO SCSI disk; "
                "libvirt: <driver "
                "discard='unmap'/>; OpenStack: hw_disk_discard=unmap with virtio-scsi",
                name,
                node.provisioningMode.empty() ? "" : " provisioning_mode=" + node.provisioningMode);
        case DiskBus::VirtioBlk:
            return fmt::format(
                "the virtual disk {} does not advertise discard (it is a virtio-blk disk without "
                "discard): enable discard on the hypervisor — Proxmox: discard=on on the disk; "
                "libvirt: <driver discard='unmap'/>; QEMU: discard=unmap on its -drive and "
                "discard=on on the virtio-blk-pci device",
                name);
        case DiskBus::Other:
            break;
        }
        return fmt::format("the disk {} does not advertise discard (queue/discard_max_bytes=0): "
                           "if it is a virtual disk, enable discard on the hypervisor — Proxmox: "
                           "discard=on; libvirt: <driver discard='unmap'/>",
                           name);
    }

    [[nodiscard]] std::string mdSentence(std::size_t index) const {
        const std::string& level = nodes_[index].mdLevel;
        if (level == "raid4" || level == "raid5" || level == "raid6")
            return fmt::format("{} drops discards: the raid456 module only passes them with "
                               "devices_handle_discard_safely=Y (set it only if every member "
                               "returns zeroes after discard)",
                               describe(index));
        return fmt::format("{} drops discards although every member passes them: check the array "
                           "with `mdadm --detail /dev/{}` and the kernel log",
                           describe(index), layers_[index].name);
    }

    [[nodiscard]] std::string thinSentence(std::size_t index) const {
        if (nodes_[index].thinPool)
            return fmt::format("{} drops discards: let it pass them down with `lvchange "
                               "--discards passdown {}`",
                               describe(index), lvmVolumeName(stripTpool(nodes_[index].dmName)));
        // A thin LV that reports 0 above a pool that passes.
        std::string pool = "VG/POOL";
        for (std::size_t child : nodes_[index].children) {
            if (nodes_[child].thinPool)
                pool = lvmVolumeName(stripTpool(nodes_[child].dmName));
        }
        return fmt::format("{} drops discards although its pool passes them: check the pool's "
                           "setting with `lvs -o name,discards {}` and set `lvchange --discards "
                           "passdown {}`",
                           describe(index), pool, pool);
    }

    // The nearest layer above `culprit` that has another leg which passes:
    // dm and md turn discards off for the whole device when one leg lacks them.
    [[nodiscard]] std::string spanClause(std::size_t culprit) const {
        for (auto parent = nodes_[culprit].parent; parent; parent = nodes_[*parent].parent) {
            std::vector<std::string> passingLegs;
            for (std::size_t child : nodes_[*parent].children) {
                if (layers_[child].passesDiscards())
                    passingLegs.push_back(layers_[child].name);
            }
            if (!passingLegs.empty())
                return fmt::format("; {} spans {} and {}, and one leg without discard turns "
                                   "them off for the whole device",
                                   describe(*parent), layers_[culprit].name,
                                   join(passingLegs, ", "));
        }
        return {};
    }

    static std::string stripTpool(std::string dmName) {
        if (dmName.ends_with("-tpool"))
            dmName.resize(dmName.size() - 6);
        return dmName;
    }

    [[nodiscard]] std::string describe(std::size_t index) const {
        const Layer& layer = layers_[index];
        const Node& node = nodes_[index];
        switch (layer.kind) {
        case LayerKind::Crypt:
            return fmt::format("dm-crypt device {} ({})", node.dmName, layer.name);
        case LayerKind::Thin:
            if (node.thinPool)
                return fmt::format("thin pool {} ({})", lvmVolumeName(stripTpool(node.dmName)),
                                   layer.name);
            return fmt::format("thin volume {} ({})", lvmVolumeName(node.dmName), layer.name);
        case LayerKind::Lvm:
            return fmt::format("LVM volume {} ({})", lvmVolumeName(node.dmName), layer.name);
        case LayerKind::Dm:
            return fmt::format("device-mapper device {} ({})", node.dmName, layer.name);
        case LayerKind::Md:
            return fmt::format("md {} array {}", node.mdLevel, layer.name);
        case LayerKind::Loop:
            return "loop device " + layer.name;
        case LayerKind::Partition:
            return "partition " + layer.name;
        case LayerKind::Disk:
            return (node.bus == DiskBus::Other ? "disk " : "virtual disk ") + layer.name;
        }
        return layer.name;
    }

    const std::vector<Layer>& layers_;
    const std::vector<Node>& nodes_;
};

std::optional<DeviceNumber> numberOfKernelName(const SystemPaths& paths, std::string_view name) {
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
        return std::nullopt;
    return tryParseDeviceNumber(readText(paths.sys(fs::path("class/block") / name / "dev")));
}

std::optional<DeviceNumber> numberOfDmName(const SystemPaths& paths, std::string_view dmName) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths.sys("class/block"), error)) {
        if (readAttribute(entry.path() / "dm" / "name") == dmName)
            return tryParseDeviceNumber(readText(entry.path() / "dev"));
    }
    return std::nullopt;
}

// Names sysfs does not know (a /dev/disk/by-* link, /dev/md/NAME) are
// resolved by the device node itself, under devRoot.
std::optional<DeviceNumber> numberOfDeviceNode(const SystemPaths& paths, std::string_view path) {
    fs::path node(path);
    if (!node.is_absolute())
        return std::nullopt;
    struct stat info {};
    if (::stat((paths.devRoot / node.relative_path()).c_str(), &info) != 0 ||
        !S_ISBLK(info.st_mode))
        return std::nullopt;
    return DeviceNumber::fromDev(info.st_rdev);
}

} // namespace

std::string lvmVolumeName(std::string_view dmName) {
    auto parts = splitLvmDmName(dmName);
    return parts ? parts->vg + "/" + parts->lv : std::string(dmName);
}

DeviceNumber DeviceNumber::fromDev(dev_t dev) {
    return DeviceNumber{::major(dev), ::minor(dev)};
}

DeviceNumber DeviceNumber::parse(std::string_view text) {
    auto number = tryParseDeviceNumber(text);
    if (!number)
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("invalid device number \"{}\" (expected MAJ:MIN)", text));
    return *number;
}

std::string DeviceNumber::toString() const {
    return fmt::format("{}:{}", major, minor);
}

dev_t DeviceNumber::toDev() const {
    return ::makedev(major, minor);
}

std::vector<const Layer*> BlockStack::tops() const {
    std::vector<const Layer*> result;
    for (const Layer& layer : layers) {
        if (layer.depth == 0)
            result.push_back(&layer);
    }
    return result;
}

BlockStack walkBlockStack(const SystemPaths& paths, const std::vector<DeviceNumber>& topDevices) {
    StackWalker walker(paths);
    for (const DeviceNumber& device : topDevices)
        walker.walkTop(device);
    WalkedStack walked = walker.take();
    BlockStack stack;
    stack.verdict = VerdictWriter(walked).judge();
    stack.layers = std::move(walked.layers);
    return stack;
}

std::optional<DeviceNumber> deviceNumberOf(const SystemPaths& paths,
                                           std::string_view deviceOrName) {
    if (auto number = tryParseDeviceNumber(deviceOrName);
        number && fs::exists(paths.sys(fs::path("dev/block") / number->toString())))
        return number;

    std::string_view name = deviceOrName;
    if (name.starts_with("/dev/"))
        name.remove_prefix(5);
    std::optional<DeviceNumber> number;
    if (name.starts_with("mapper/")) {
        number = numberOfDmName(paths, name.substr(7));
    } else if (auto slash = name.find('/'); slash != std::string_view::npos) {
        // /dev/VG/LV
        if (name.find('/', slash + 1) == std::string_view::npos)
            number =
                numberOfDmName(paths, lvmDmNameOf(name.substr(0, slash), name.substr(slash + 1)));
    } else {
        number = numberOfKernelName(paths, name);
        if (!number)
            number = numberOfDmName(paths, name);
    }
    return number ? number : numberOfDeviceNode(paths, deviceOrName);
}

} // namespace thintrim
