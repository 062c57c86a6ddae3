// SPDX-License-Identifier: GPL-2.0-or-later
#include "stack/storage_health.h"

#include <algorithm>
#include <charconv>
#include <fstream>

#include <fmt/format.h>

namespace thintrim {

namespace {

// The first line of a small sysfs attribute, trimmed; nullopt when absent.
std::optional<std::string> readAttribute(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line))
        return std::nullopt;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
        line.pop_back();
    line.resize(std::min<std::size_t>(line.size(), 64));
    return line;
}

// sync_action values that mean the array is busy with itself, and how to say it.
std::optional<std::string_view> busyAction(std::string_view action) {
    if (action == "resync")
        return "resyncing";
    if (action == "recover")
        return "recovering a device";
    if (action == "reshape")
        return "reshaping";
    if (action == "check")
        return "checking its redundancy";
    if (action == "repair")
        return "repairing";
    return std::nullopt; // idle, frozen, or unknown
}

std::string describe(const Layer& layer) {
    return layer.detail.empty() ? layer.name : fmt::format("{} ({})", layer.name, layer.detail);
}

} // namespace

std::optional<std::string> storageDeferral(const SystemPaths& paths, const BlockStack& stack) {
    for (const Layer& layer : stack.layers) {
        if (layer.kind != LayerKind::Md)
            continue;
        const std::filesystem::path md = paths.sys("block") / layer.name / "md";
        if (auto degraded = readAttribute(md / "degraded")) {
            unsigned missing = 0;
            const char* end = degraded->data() + degraded->size();
            if (std::from_chars(degraded->data(), end, missing).ptr == end && missing > 0)
                return fmt::format("{} is degraded: {} device{} missing", describe(layer), missing,
                                   missing == 1 ? "" : "s");
        }
        if (auto action = readAttribute(md / "sync_action")) {
            if (auto busy = busyAction(*action))
                return fmt::format("{} is {}", describe(layer), *busy);
        }
    }
    return std::nullopt;
}

std::vector<std::string> leafDevices(const BlockStack& stack) {
    std::vector<std::string> leaves;
    for (std::size_t i = 0; i < stack.layers.size(); ++i) {
        const bool hasChild =
            i + 1 < stack.layers.size() && stack.layers[i + 1].depth > stack.layers[i].depth;
        if (!hasChild &&
            std::find(leaves.begin(), leaves.end(), stack.layers[i].name) == leaves.end())
            leaves.push_back(stack.layers[i].name);
    }
    return leaves;
}

} // namespace thintrim
