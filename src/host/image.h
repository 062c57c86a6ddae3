// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "stack/dm_thin.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim::host {

// The fields of a qcow2 header that say where space can stay pinned.
struct Qcow2Header {
    std::uint32_t version = 0;
    std::uint64_t virtualSize = 0;
    std::uint32_t snapshots = 0; // internal snapshots: their clusters stay allocated
    std::string backingFile;     // discarded clusters of the backing file stay there
};
// From the first bytes of an image (72 or more); nullopt when it is not qcow2.
[[nodiscard]] std::optional<Qcow2Header> parseQcow2Header(std::string_view bytes);

// How much of a disk's image is allocated on the host, and what may keep
// freed space from coming back.
struct ImageUsage {
    // "qcow2 file", "raw file", "thin LV", "LV", "zvol", "block device",
    // "rbd" ... or "missing" when the image is not there.
    std::string kind;
    std::optional<std::uint64_t> allocatedBytes;
    std::optional<std::uint64_t> sizeBytes;
    std::optional<Qcow2Header> qcow2;
    // For a thin LV: its pool ("vg/pool" as lvchange takes it) and what the
    // pool does with discards.
    std::string thinPool;
    std::optional<ThinPoolDiscards> thinPoolDiscards;
    // A zvol's refreservation: space kept for it whatever the guest discards.
    std::optional<std::uint64_t> reservedBytes;
    std::string note; // why something is unknown
};

// Runs a program with arguments and returns its standard output, or nullopt
// when it cannot be started, fails or overruns its time. Injected so tests
// run no `zfs`.
using CommandRunner = std::function<std::optional<std::string>(const std::vector<std::string>&)>;

// posix_spawnp, output read with poll(), killed after `timeout`.
[[nodiscard]] CommandRunner systemCommandRunner(std::chrono::milliseconds timeout);

struct ImageProbe {
    std::filesystem::path sysfsRoot = "/"; // for block devices' sizes
    DmReader dmReader;                     // thin LVs' status and their pools' tables
    CommandRunner runCommand;              // `zfs get` for zvols
};

// A block device image by its number (stat() done): size from sysfs; a thin
// LV's mapped bytes from its dm status and its pool's discard mode; a
// zvol's `zfs get used`. Nothing is opened.
[[nodiscard]] ImageUsage probeBlockImage(const std::string& image, const DeviceNumber& device,
                                         const ImageProbe& probe);

// Reads `image` (a path; anything else is not inspected) without writing.
[[nodiscard]] ImageUsage probeImage(const std::string& image, const ImageProbe& probe);

} // namespace thintrim::host
