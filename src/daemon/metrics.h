// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "state/state.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace thintrim::daemon {

// The Prometheus text exposition of `state` for node_exporter's textfile
// collector: per filesystem (labels mountpoint and identity) the last trim's
// time, bytes, duration and success, the lifetime totals, and whether the
// daemon is suspended.
// Also the receipts (bytes of discards that reached the disks), the verify
// verdict on record, and what the daemon sampled since, both by filesystem
// identity: `discardBacklog`, the bytes btrfs discard=async has yet to
// discard, and `freedSinceLastTrim`, free space grown since the last trim
// (freedSinceLastTrim() in schedule.h): the stranded space a fleet watches.
// A filesystem missing from a map has no line for that metric (unknown).
using BytesByIdentity = std::map<std::string, std::uint64_t, std::less<>>;
using DiscardBacklog = BytesByIdentity;
[[nodiscard]] std::string formatMetrics(const State& state,
                                        const DiscardBacklog& discardBacklog = {},
                                        const BytesByIdentity& freedSinceLastTrim = {});

// Writes formatMetrics() to `file` mode 0644 with writeFileAtomically()
// (atomic_file.h), so the collector never reads half a file and a symlink
// planted at the temporary name is never followed. Throws Error(Failed).
void writeMetricsFile(const std::filesystem::path& file, const State& state,
                      const DiscardBacklog& discardBacklog = {},
                      const BytesByIdentity& freedSinceLastTrim = {});

} // namespace thintrim::daemon
