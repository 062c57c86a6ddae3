// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "stack/block_stack.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace thintrim {

// The counters the core uses from one /proc/diskstats line: since boot, or
// since the device appeared.
struct DiskstatsRow {
    std::uint64_t reads = 0; // completed
    std::uint64_t readMs = 0;
    std::uint64_t writes = 0;         // completed
    std::uint64_t writtenSectors = 0; // 512-byte units, whatever the block size
    std::uint64_t writeMs = 0;
    bool operator==(const DiskstatsRow&) const = default;
};

// By kernel name ("sda", "dm-2").
using Diskstats = std::map<std::string, DiskstatsRow, std::less<>>;

// A line that is short or has a field that is not a number is left out.
[[nodiscard]] Diskstats parseDiskstats(std::string_view text);
// nullopt when the file cannot be read.
[[nodiscard]] std::optional<Diskstats> readDiskstats(const std::filesystem::path& path);

// Bytes written to the top layers of `stack` (the filesystem's own devices:
// the partition or dm device, not the disk other filesystems share) since
// they appeared, summed; nullopt when none has a row.
[[nodiscard]] std::optional<std::uint64_t> bytesWrittenTo(const BlockStack& stack,
                                                          const Diskstats& diskstats);

} // namespace thintrim
