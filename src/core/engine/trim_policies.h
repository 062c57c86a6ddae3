// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "config/config.h"
#include "config/window.h"
#include "engine/engine.h"
#include "trim/pacing.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace thintrim {

// The engine's per-chunk policies (engine.h) that make thintrim gentle: the
// rate limit, load-aware pacing, trim windows and deferral while the storage
// is busy with itself. Each is asked before every chunk.

// Keeps the average trimmed bytes per second of a filesystem's run at or
// below the job's rate limit (JobOptions::rateLimit). Every engine has one,
// asked first.
class RateLimitPolicy final : public ChunkPolicy {
public:
    [[nodiscard]] ChunkDecision beforeChunk(const ChunkContext& context) override;
    void setRate(std::uint64_t bytesPerSecond) { rate_ = bytesPerSecond; }

private:
    std::uint64_t rate_ = 0;
};

// Pacing=auto (pacing.h): after each chunk, a short probe while nothing is
// issued, then the controller's wait and next chunk size. Pacing=fixed: no
// opinion (ChunkSize and RateLimit alone).
class PacingPolicy final : public ChunkPolicy {
public:
    // The leaf disks under a mount, whose latency is watched.
    using LeafDisks = std::function<std::vector<std::string>(const Mount&)>;
    // Reads the counters; injectable for tests.
    using Sampler =
        std::function<IoSample(const std::vector<std::string>& leafDisks, Microseconds sinceBoot)>;

    PacingPolicy(LeafDisks leafDisks, Sampler sampler);

    void setMode(PacingMode mode) { mode_ = mode; }
    // Limits for the next run (maxChunk comes from each run's chunk size).
    void setLimits(const PacingLimits& limits) { limits_ = limits; }

    [[nodiscard]] ChunkDecision beforeChunk(const ChunkContext& context) override;

    // What pacing is doing now, for `thintrim status` and the Pacing
    // property: "waiting: I/O pressure 34 %", "probing", "" when not
    // holding a trim back (or not trimming).
    [[nodiscard]] std::string status() const;

private:
    enum class Phase { Go, Probing, Waiting };
    struct Run {
        std::uint64_t jobId = 0;
        Microseconds started{0};
        std::uint64_t cursor = 0;
        std::vector<std::string> leafDisks;
        PacingController controller;
        Phase phase = Phase::Go;
        Microseconds until{0};
        IoSample chunkStart;
        IoSample chunkEnd;
        IoSample waitStart; // the probe's end: a wait measures the pressure without the trim
        std::string waitingReason;
    };

    LeafDisks leafDisks_;
    Sampler sampler_;
    PacingMode mode_ = PacingMode::Auto;
    PacingLimits limits_;
    std::optional<Run> run_;
};

// Window= for scheduled jobs: outside the windows the filesystem is deferred
// at a chunk boundary, keeping its cursor; the schedule brings it back when
// a window opens (schedule.h). Jobs asked for by hand are not held back.
class WindowPolicy final : public ChunkPolicy {
public:
    using IsScheduled = std::function<bool(std::uint64_t jobId)>;
    using Realtime = std::function<Microseconds()>;

    WindowPolicy(IsScheduled isScheduled, Realtime realtime);
    void setWindows(std::vector<TimeWindow> windows) { windows_ = WindowSet(std::move(windows)); }

    [[nodiscard]] ChunkDecision beforeChunk(const ChunkContext& context) override;

private:
    IsScheduled isScheduled_;
    Realtime realtime_;
    WindowSet windows_;
};

// Storage busy or degraded (storage_health.h) under a scheduled job's
// filesystem: deferred, with the reason, before its first chunk and between
// chunks.
class StorageHealthPolicy final : public ChunkPolicy {
public:
    using IsScheduled = std::function<bool(std::uint64_t jobId)>;
    // nullopt: nothing objects; else why the filesystem's storage is busy.
    using Check = std::function<std::optional<std::string>(const Mount&)>;

    StorageHealthPolicy(IsScheduled isScheduled, Check check);

    [[nodiscard]] ChunkDecision beforeChunk(const ChunkContext& context) override;

private:
    IsScheduled isScheduled_;
    Check check_;
};

} // namespace thintrim
