// SPDX-License-Identifier: GPL-2.0-or-later
#include "stack/dm_thin.h"

#include "base/error.h"
#include "base/unique_fd.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>

namespace thintrim {

namespace {

std::vector<std::string> words(std::string_view text) {
    std::istringstream in{std::string(text)};
    std::vector<std::string> out;
    std::string word;
    while (in >> word)
        out.push_back(word);
    return out;
}

std::optional<std::uint64_t> parseCount(const std::string& text) {
    if (text.empty() || text.size() > 19 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    return std::stoull(text);
}

// The ioctl's answer is a dm_ioctl header followed by target specs, each
// followed by its NUL-terminated params; `next` counts from the first spec.
std::vector<DmTarget> parseTargets(const std::vector<char>& buffer, const dm_ioctl& header) {
    std::vector<DmTarget> targets;
    const std::size_t dataEnd = std::min<std::size_t>(header.data_size, buffer.size());
    std::size_t offset = header.data_start;
    for (std::uint32_t i = 0; i < header.target_count; ++i) {
        if (offset + sizeof(dm_target_spec) > dataEnd)
            break;
        dm_target_spec spec{};
        std::memcpy(&spec, buffer.data() + offset, sizeof spec);
        DmTarget target;
        target.startSector = spec.sector_start;
        target.lengthSectors = spec.length;
        target.type.assign(spec.target_type, strnlen(spec.target_type, sizeof spec.target_type));
        const char* params = buffer.data() + offset + sizeof spec;
        target.params.assign(params, strnlen(params, dataEnd - offset - sizeof spec));
        targets.push_back(std::move(target));
        if (spec.next == 0)
            break;
        offset = header.data_start + spec.next;
    }
    return targets;
}

} // namespace

std::vector<DmTarget> readDmTargets(const std::filesystem::path& control,
                                    const DeviceNumber& device, bool asStatus) {
    UniqueFd fd(::open(control.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd.isValid())
        throwSystemError("open " + control.string(), errno);
    // Tables of a few targets fit in 16 KiB; grow when the kernel says so.
    for (std::size_t size = 16 * 1024; size <= 4 * 1024 * 1024; size *= 4) {
        std::vector<char> buffer(size, 0);
        dm_ioctl header{};
        header.version[0] = DM_VERSION_MAJOR;
        header.version[1] = 0;
        header.version[2] = 0;
        header.data_size = static_cast<std::uint32_t>(size);
        header.data_start = sizeof(dm_ioctl);
        header.dev = makedev(device.major, device.minor);
        header.flags = asStatus ? 0 : DM_STATUS_TABLE_FLAG;
        std::memcpy(buffer.data(), &header, sizeof header);
        if (::ioctl(fd.get(), DM_TABLE_STATUS, buffer.data()) != 0)
            throwSystemError(fmt::format("DM_TABLE_STATUS on {}", device.toString()), errno);
        std::memcpy(&header, buffer.data(), sizeof header);
        if ((header.flags & DM_BUFFER_FULL_FLAG) != 0)
            continue;
        return parseTargets(buffer, header);
    }
    throw Error(
        ErrorCode::Failed,
        fmt::format("DM_TABLE_STATUS on {}: the table is larger than 4 MiB", device.toString()));
}

std::optional<ThinPoolDiscards> thinPoolDiscardsFromTable(std::string_view params) {
    const std::vector<std::string> fields = words(params);
    if (fields.size() < 5)
        return std::nullopt;
    const std::optional<std::uint64_t> featureCount = parseCount(fields[4]);
    if (!featureCount || *featureCount > fields.size() - 5)
        return std::nullopt;
    ThinPoolDiscards mode = ThinPoolDiscards::Passdown;
    for (std::size_t i = 5; i < 5 + *featureCount; ++i) {
        if (fields[i] == "ignore_discard")
            return ThinPoolDiscards::Ignore;
        if (fields[i] == "no_discard_passdown")
            mode = ThinPoolDiscards::NoPassdown;
    }
    return mode;
}

std::optional<ThinPoolDiscards> thinPoolDiscardsFromStatus(std::string_view params) {
    for (const std::string& field : words(params)) {
        if (field == "ignore_discard")
            return ThinPoolDiscards::Ignore;
        if (field == "no_discard_passdown")
            return ThinPoolDiscards::NoPassdown;
        if (field == "discard_passdown")
            return ThinPoolDiscards::Passdown;
    }
    return std::nullopt;
}

std::string SwallowingThinPool::sentence() const {
    if (asked == ThinPoolDiscards::Passdown && effective == ThinPoolDiscards::NoPassdown)
        return fmt::format("thin pool {} ({}) was set up to pass discards down, but the kernel "
                           "turned passdown off because its data device cannot discard: space "
                           "freed in the pool never reaches the virtual disk",
                           volume, layerName);
    if (effective == ThinPoolDiscards::Ignore)
        return fmt::format("thin pool {} ({}) ignores discards: neither the pool nor the virtual "
                           "disk under it gets space back",
                           volume, layerName);
    return fmt::format("thin pool {} ({}) does not pass discards down (discards={}): space freed "
                       "in the pool stays allocated on the virtual disk",
                       volume, layerName, thinPoolDiscardsName(effective));
}

std::string SwallowingThinPool::fix() const {
    if (asked == ThinPoolDiscards::Passdown && effective == ThinPoolDiscards::NoPassdown)
        return fmt::format("enable discards on the device under the pool's data volume "
                           "(`thintrim stack` shows it), then `lvchange --discards passdown {}` "
                           "after deactivating and reactivating the pool",
                           volume);
    return fmt::format("lvchange --discards passdown {}", volume);
}

DmReader systemDmReader(const SystemPaths& paths) {
    const std::filesystem::path control = paths.devRoot / "dev/mapper/control";
    return [control](const DeviceNumber& device) -> std::optional<DmTableAndStatus> {
        try {
            return DmTableAndStatus{readDmTargets(control, device, false),
                                    readDmTargets(control, device, true)};
        } catch (const Error&) {
            return std::nullopt;
        }
    };
}

std::vector<SwallowingThinPool> findSwallowingThinPools(const BlockStack& stack,
                                                        const DmReader& reader) {
    std::vector<SwallowingThinPool> pools;
    for (const Layer& layer : stack.layers) {
        // Thin volumes and pools are both "thin"; the table tells them apart.
        if (layer.kind != LayerKind::Thin)
            continue;
        if (std::any_of(pools.begin(), pools.end(), [&](const SwallowingThinPool& pool) {
                return pool.layerName == layer.name;
            }))
            continue;
        const std::optional<DmTableAndStatus> read = reader(layer.device);
        if (!read || read->table.empty() || read->table.front().type != "thin-pool")
            continue;
        const std::optional<ThinPoolDiscards> asked =
            thinPoolDiscardsFromTable(read->table.front().params);
        std::optional<ThinPoolDiscards> effective;
        if (!read->status.empty() && read->status.front().type == "thin-pool")
            effective = thinPoolDiscardsFromStatus(read->status.front().params);
        if (!effective)
            effective = asked;
        if (!effective || *effective == ThinPoolDiscards::Passdown)
            continue;
        SwallowingThinPool pool;
        pool.layerName = layer.name;
        std::string dmName = layer.detail;
        if (dmName.ends_with("-tpool"))
            dmName.resize(dmName.size() - std::string_view("-tpool").size());
        pool.volume = lvmVolumeName(dmName);
        pool.asked = asked.value_or(*effective);
        pool.effective = *effective;
        pools.push_back(std::move(pool));
    }
    return pools;
}

} // namespace thintrim
