// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "stack/block_stack.h"
#include "trim/trim.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// Receipts: what reached the virtual disks. The kernel's FITRIM figure says
// what the filesystem asked to discard (xfs: the range covered; ext4: space
// freed since its last trim); the block layer's counters of the leaf devices
// say what the disks below the guest were told to free. That figure is an
// upper bound of what the host reclaims (space already free on the host is
// discarded again), counts a mirror once per disk, and includes discards
// from other sources in the same moment. Its strength is the zero: bytes
// reported by FITRIM with nothing reaching the disks means a layer inside the
// guest swallowed them.

// The discard fields of one `/sys/class/block/NAME/stat` line (fields 12 and
// 14 since Linux 4.18): completed discard requests and 512-byte sectors.
struct DiscardCounters {
    std::uint64_t ios = 0;
    std::uint64_t sectors = 0;
    bool operator==(const DiscardCounters&) const = default;
};

// Parses a stat line; nullopt when it has fewer than 14 fields (a kernel
// before 4.18) or a field is not a number.
[[nodiscard]] std::optional<DiscardCounters> parseDiscardCounters(std::string_view statLine);

// The leaf devices of a stack (layers with nothing under them: disks, loop
// devices), each once, in stack order: "sda", "sdb".
[[nodiscard]] std::vector<std::string> leafDeviceNames(const BlockStack& stack);

// Counters per leaf device name. A device whose stat cannot be read is
// absent: it contributes nothing rather than a guess.
using DiscardSnapshot = std::map<std::string, DiscardCounters, std::less<>>;

[[nodiscard]] DiscardSnapshot readDiscardSnapshot(const SystemPaths& paths,
                                                  const std::vector<std::string>& devices);

// Bytes of discards completed between two snapshots, summed over the devices
// present in both. A counter that went backwards (device re-created) counts
// 0 for that device.
[[nodiscard]] std::uint64_t discardedBytesBetween(const DiscardSnapshot& before,
                                                  const DiscardSnapshot& after);

// The receipt of one filesystem's trim: the discard counters of its stack's
// leaves read when the trim starts (construction) and when it ends
// (finish()). Reading sysfs only, no device I/O.
class ReceiptMeter {
public:
    ReceiptMeter(const SystemPaths& paths, const BlockStack& stack);
    // Bytes of discards the leaves completed since construction; nullopt when
    // no counter could be read (a kernel without discard fields, a capture),
    // never a misleading 0.
    [[nodiscard]] std::optional<std::uint64_t> finish() const;

private:
    SystemPaths paths_;
    std::vector<std::string> leaves_;
    DiscardSnapshot before_;
};

// FITRIM reported bytes but no discard reached any leaf device: a layer
// inside the guest (a thin pool without passdown, ...) swallowed them.
[[nodiscard]] bool discardsSwallowed(std::uint64_t trimmedBytes,
                                     std::optional<std::uint64_t> reachedDiskBytes);

// The sentence status and doctor print for that case.
[[nodiscard]] std::string swallowedSentence(std::uint64_t trimmedBytes);

} // namespace thintrim
