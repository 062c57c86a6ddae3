// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "base/units.h"
#include "stack/diskstats.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace thintrim {

// Load-aware pacing (Pacing=auto): between two chunks of a trim, look at how
// foreground I/O fares and wait and shrink the next chunk when it suffers,
// grow it back when quiet (additive increase, multiplicative decrease).
//
// Two signals, both measured so that the trim's own I/O does not count:
// - I/O pressure: the share of time some task was stalled on I/O
//   (/proc/pressure/io "some"), over a short probe while thintrim issues
//   nothing (a FITRIM caller waits on I/O itself, so the pressure during a
//   chunk would mostly be ours), against the pressure while the trim waited:
//   foreground work that keeps the disk busy on its own is no reason to
//   wait, only what the trim adds to it;
// - foreground latency of the leaf disks under the filesystem: the average
//   time a read or write took (diskstats; discards are counted apart and left
//   out), during the chunk, against the usual latency measured in the probes.
//   A shared backend that is busy shows up here in every guest using it, so
//   every guest backs off: fleet-wide back-pressure with no coordinator.

// Cumulative counters read at one instant.
struct IoSample {
    Microseconds at{0};                           // monotonic
    std::optional<std::uint64_t> pressureStallUs; // /proc/pressure/io "some" total=
    // Reads + writes completed, and the milliseconds they took, summed over
    // the leaf disks; nullopt when none of them was found.
    std::optional<std::uint64_t> ios;
    std::optional<std::uint64_t> ioMs;
};

// What happened between two samples.
struct IoInterval {
    std::optional<double> pressurePercent; // 0..100
    std::optional<double> latencyMs;       // nullopt with too few I/Os to judge
};
// Counters that went backwards (a disk removed and re-added) give nullopt.
[[nodiscard]] IoInterval ioBetween(const IoSample& from, const IoSample& to);

// "some avg10=1.00 avg60=0.50 avg300=0.10 total=12345": the total, in µs;
// nullopt when the file is missing (no PSI: kernel without CONFIG_PSI or
// psi=0) or unreadable.
[[nodiscard]] std::optional<std::uint64_t> parsePressureTotal(std::string_view text);
// The named devices' reads + writes completed and the milliseconds spent on
// them, summed.
struct DiskCounters {
    std::uint64_t ios = 0;
    std::uint64_t ioMs = 0;
    unsigned devices = 0; // how many of the names were found
};
[[nodiscard]] DiskCounters sumDiskCounters(const Diskstats& diskstats,
                                           const std::vector<std::string>& devices);
// Reads both files now (SystemPaths::ioPressure and ::diskstats).
[[nodiscard]] IoSample sampleIo(const SystemPaths& paths, const std::vector<std::string>& leafDisks,
                                Microseconds now);

// The controller's limits. A chunk never shrinks below `floorChunk` and a wait
// never exceeds `maxWait`, so a trim always finishes however busy the
// storage is: at worst one floor chunk per maxWait.
struct PacingLimits {
    std::uint64_t maxChunk = std::uint64_t{1} << 30; // ChunkSize=
    std::uint64_t floorChunk = std::uint64_t{64} << 20;
    Microseconds probe = std::chrono::milliseconds(250);
    Microseconds firstWait = std::chrono::seconds(1);
    Microseconds maxWait = std::chrono::seconds(10);
    // Probe pressure at least this many points above the pressure while
    // the trim waited (0 before any wait) counts as suffering.
    double pressureLimitPercent = 20.0;
    // Foreground latency during a chunk counts as suffering above both
    // latencyFactor × the usual latency and the usual latency + latencyMarginMs.
    double latencyFactor = 2.0;
    double latencyMarginMs = 2.0;
    // Without a usual latency yet (no foreground I/O in the probes).
    double absoluteLatencyLimitMs = 20.0;
};

// The pure decision part: readings in, chunk size and wait out.
class PacingController {
public:
    explicit PacingController(PacingLimits limits);

    struct Decision {
        Microseconds wait{0};      // before the next chunk
        std::uint64_t chunk = 0;   // bytes for the next chunk
        std::string waitingReason; // "I/O pressure 34 %"; empty when not backing off
    };

    // After a chunk: `duringChunk` covers the chunk itself, `probe` the quiet
    // probe after it (when the pressure is judged, and the usual latency
    // learnt).
    Decision afterChunk(const IoInterval& duringChunk, const IoInterval& probe);
    // A wait ended (nothing of the trim in flight for `waited`): the
    // pressure the machine has without the trim.
    void afterWait(const IoInterval& waited);

    [[nodiscard]] std::uint64_t chunk() const { return chunk_; }
    [[nodiscard]] const PacingLimits& limits() const { return limits_; }
    [[nodiscard]] std::optional<double> usualLatencyMs() const { return usualLatencyMs_; }
    [[nodiscard]] std::optional<double> quietPressurePercent() const {
        return quietPressurePercent_;
    }

private:
    PacingLimits limits_;
    std::uint64_t chunk_;
    Microseconds wait_{0};
    std::optional<double> usualLatencyMs_;
    std::optional<double> quietPressurePercent_;
};

} // namespace thintrim
