// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim/receipts.h"

#include "base/text.h"
#include "base/units.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

namespace thintrim {

namespace {

constexpr std::size_t kDiscardIosField = 11;     // 0-based: the 12th field
constexpr std::size_t kDiscardSectorsField = 13; // the 14th
constexpr std::uint64_t kSectorBytes = 512;

} // namespace

std::optional<DiscardCounters> parseDiscardCounters(std::string_view statLine) {
    const std::vector<std::string_view> fields = splitFields(statLine);
    if (fields.size() <= kDiscardSectorsField)
        return std::nullopt;
    auto ios = parseDecimal(fields[kDiscardIosField]);
    auto sectors = parseDecimal(fields[kDiscardSectorsField]);
    if (!ios || !sectors)
        return std::nullopt;
    return DiscardCounters{*ios, *sectors};
}

std::vector<std::string> leafDeviceNames(const BlockStack& stack) {
    std::vector<std::string> leaves;
    const auto& layers = stack.layers;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        // Depth-first order: a layer is a leaf when the next one is not below it.
        const bool hasChild = i + 1 < layers.size() && layers[i + 1].depth > layers[i].depth;
        if (!hasChild && std::find(leaves.begin(), leaves.end(), layers[i].name) == leaves.end())
            leaves.push_back(layers[i].name);
    }
    return leaves;
}

DiscardSnapshot readDiscardSnapshot(const SystemPaths& paths,
                                    const std::vector<std::string>& devices) {
    DiscardSnapshot snapshot;
    for (const std::string& device : devices) {
        // Kernel names only: a name from a layer never walks out of sysfs.
        if (device.empty() || device.find('/') != std::string::npos || device == "..")
            continue;
        std::ifstream in(paths.sys(std::filesystem::path("class/block") / device / "stat"));
        std::string line;
        if (!in || !std::getline(in, line))
            continue;
        if (auto counters = parseDiscardCounters(line))
            snapshot.emplace(device, *counters);
    }
    return snapshot;
}

std::uint64_t discardedBytesBetween(const DiscardSnapshot& before, const DiscardSnapshot& after) {
    std::uint64_t total = 0;
    for (const auto& [device, end] : after) {
        auto start = before.find(device);
        if (start == before.end() || end.sectors < start->second.sectors)
            continue;
        const std::uint64_t sectors = end.sectors - start->second.sectors;
        // Saturate: a corrupt counter must not wrap the sum.
        const std::uint64_t bytes =
            sectors > UINT64_MAX / kSectorBytes ? UINT64_MAX : sectors * kSectorBytes;
        total = bytes > UINT64_MAX - total ? UINT64_MAX : total + bytes;
    }
    return total;
}

ReceiptMeter::ReceiptMeter(const SystemPaths& paths, const BlockStack& stack)
    : paths_(paths), leaves_(leafDeviceNames(stack)),
      before_(readDiscardSnapshot(paths_, leaves_)) {}

std::optional<std::uint64_t> ReceiptMeter::finish() const {
    const DiscardSnapshot after = readDiscardSnapshot(paths_, leaves_);
    if (before_.empty() || after.empty())
        return std::nullopt;
    return discardedBytesBetween(before_, after);
}

bool discardsSwallowed(std::uint64_t trimmedBytes, std::optional<std::uint64_t> reachedDiskBytes) {
    return trimmedBytes > 0 && reachedDiskBytes && *reachedDiskBytes == 0;
}

std::string swallowedSentence(std::uint64_t trimmedBytes) {
    return fmt::format("FITRIM reported {} but no discard reached the virtual disks: a layer "
                       "inside the guest swallowed them (a thin pool without discard passdown, "
                       "a device-mapper target without discard support); `thintrim doctor` "
                       "names the layers it can see",
                       formatSize(trimmedBytes));
}

} // namespace thintrim
