// SPDX-License-Identifier: GPL-2.0-or-later
#include "stack/diskstats.h"

#include "base/text.h"
#include "base/units.h"

namespace thintrim {

Diskstats parseDiskstats(std::string_view text) {
    Diskstats rows;
    forEachLine(text, [&](std::string_view line) {
        const std::vector<std::string_view> words = splitFields(line);
        // major minor name, then reads: completed merged sectors ms, writes:
        // completed merged sectors ms, ...
        if (words.size() < 11)
            return;
        auto reads = parseDecimal(words[3]);
        auto readMs = parseDecimal(words[6]);
        auto writes = parseDecimal(words[7]);
        auto writtenSectors = parseDecimal(words[9]);
        auto writeMs = parseDecimal(words[10]);
        if (!reads || !readMs || !writes || !writtenSectors || !writeMs)
            return;
        rows[std::string(words[2])] = {*reads, *readMs, *writes, *writtenSectors, *writeMs};
    });
    return rows;
}

std::optional<Diskstats> readDiskstats(const std::filesystem::path& path) {
    std::optional<std::string> text = readSmallFile(path);
    if (!text)
        return std::nullopt;
    return parseDiskstats(*text);
}

std::optional<std::uint64_t> bytesWrittenTo(const BlockStack& stack, const Diskstats& diskstats) {
    constexpr std::uint64_t kSectorBytes = 512;
    std::optional<std::uint64_t> written;
    for (const Layer* top : stack.tops()) {
        const auto row = diskstats.find(top->name);
        if (row == diskstats.end())
            continue;
        const std::uint64_t sectors = row->second.writtenSectors;
        written = saturatingAdd(written.value_or(0), sectors > UINT64_MAX / kSectorBytes
                                                         ? UINT64_MAX
                                                         : sectors * kSectorBytes);
    }
    return written;
}

} // namespace thintrim
