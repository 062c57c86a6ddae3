// SPDX-License-Identifier: GPL-2.0-or-later
#include "discovery/btrfs_discard.h"

#include "base/text.h"
#include "base/units.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

namespace thintrim {

namespace {

bool hasAsyncDiscard(std::string_view options) {
    std::size_t position = 0;
    while (position <= options.size()) {
        std::size_t comma = options.find(',', position);
        if (comma == std::string_view::npos)
            comma = options.size();
        if (options.substr(position, comma - position) == "discard=async")
            return true;
        position = comma + 1;
    }
    return false;
}

// A btrfs UUID as sysfs names its directory: hex digits and dashes only, so
// that a label-like value never walks out of sys/fs/btrfs.
bool isUuid(std::string_view uuid) {
    return !uuid.empty() && uuid.size() <= 36 && std::all_of(uuid.begin(), uuid.end(), [](char c) {
        return c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
}

} // namespace

std::optional<BtrfsAsyncDiscard> btrfsAsyncDiscard(const SystemPaths& paths, const Mount& mount) {
    if (mount.fsType != "btrfs" ||
        !(hasAsyncDiscard(mount.fsOptions) || hasAsyncDiscard(mount.vfsOptions)))
        return std::nullopt;
    BtrfsAsyncDiscard async;
    if (!isUuid(mount.uuid))
        return async;
    std::ifstream in(paths.sys("fs/btrfs") / mount.uuid / "discard" / "discardable_bytes");
    std::string text;
    if (in >> text) {
        if (const auto value = parseDecimal(text))
            async.backlogBytes = *value;
    }
    return async;
}

std::string btrfsAsyncSentence(const BtrfsAsyncDiscard& async) {
    return fmt::format(
        "mounted with discard=async: btrfs discards freed space itself in the "
        "background{}; periodic trims are a safety net for what it leaves",
        async.backlogBytes ? fmt::format(" ({} waiting)", formatSize(*async.backlogBytes)) : "");
}

} // namespace thintrim
