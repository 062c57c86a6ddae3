// SPDX-License-Identifier: GPL-2.0-or-later
#include "engine/trim_policies.h"

#include <algorithm>
#include <ctime>
#include <limits>

#include <fmt/format.h>

namespace thintrim {

namespace {
// A wait shorter than this says little about the pressure without the trim.
constexpr Microseconds kShortestQuietWait = std::chrono::milliseconds(500);
} // namespace

ChunkDecision RateLimitPolicy::beforeChunk(const ChunkContext& context) {
    ChunkDecision decision;
    if (rate_ == 0 || !context.lastChunk)
        return decision;
    // Floating seconds: exact enough for a pause, and no overflow for any size.
    const double allowed = static_cast<double>(context.trimmedBytes) / static_cast<double>(rate_);
    const double limit = static_cast<double>(std::numeric_limits<Microseconds::rep>::max()) / 2;
    const double start = static_cast<double>(context.runStarted.count());
    const double at = std::min(start + allowed * 1e6, limit);
    decision.notBefore = Microseconds(static_cast<Microseconds::rep>(at));
    return decision;
}

PacingPolicy::PacingPolicy(LeafDisks leafDisks, Sampler sampler)
    : leafDisks_(std::move(leafDisks)), sampler_(std::move(sampler)) {}

ChunkDecision PacingPolicy::beforeChunk(const ChunkContext& context) {
    if (mode_ == PacingMode::Fixed || context.mount == nullptr) {
        run_.reset();
        return {};
    }
    const bool sameRun =
        run_ && run_->jobId == context.jobId && run_->started == context.runStarted;
    if (!sameRun) {
        // A new filesystem: its own disks, and a slow start from the floor.
        // The run's chunk size before anyone changed it is the ceiling.
        PacingLimits limits = limits_;
        limits.maxChunk = context.chunkSize;
        run_.emplace(Run{context.jobId, context.runStarted, context.cursor,
                         leafDisks_(*context.mount), PacingController(limits), Phase::Go,
                         Microseconds{0}, IoSample{}, IoSample{}, IoSample{}, std::string{}});
    }
    Run& run = *run_;
    const Microseconds now = context.now;

    if (context.lastChunk && context.cursor != run.cursor) {
        // A chunk just ended: probe with nothing of ours in flight.
        run.cursor = context.cursor;
        run.chunkEnd = sampler_(run.leafDisks, now);
        run.phase = Phase::Probing;
        run.until = now + run.controller.limits().probe;
        return {run.until, run.controller.chunk(), false, {}};
    }
    if (run.phase == Phase::Probing && now >= run.until) {
        const IoSample probeEnd = sampler_(run.leafDisks, now);
        const PacingController::Decision decision = run.controller.afterChunk(
            ioBetween(run.chunkStart, run.chunkEnd), ioBetween(run.chunkEnd, probeEnd));
        run.waitStart = probeEnd;
        run.waitingReason = decision.waitingReason;
        run.phase = Phase::Waiting;
        run.until = now + decision.wait;
    }
    if (run.phase != Phase::Go && now < run.until)
        return {run.until, run.controller.chunk(), false, {}};
    // Going: the chunk starts now (unless another policy holds it back, in
    // which case this is asked again and the sample taken again).
    const IoSample sample = sampler_(run.leafDisks, now);
    if (run.phase == Phase::Waiting && now - run.waitStart.at >= kShortestQuietWait)
        run.controller.afterWait(ioBetween(run.waitStart, sample));
    run.phase = Phase::Go;
    run.waitingReason.clear();
    run.chunkStart = sample;
    return {Microseconds{0}, run.controller.chunk(), false, {}};
}

std::string PacingPolicy::status() const {
    if (!run_)
        return {};
    if (run_->phase == Phase::Waiting && !run_->waitingReason.empty())
        return "waiting: " + run_->waitingReason;
    return {};
}

WindowPolicy::WindowPolicy(IsScheduled isScheduled, Realtime realtime)
    : isScheduled_(std::move(isScheduled)), realtime_(std::move(realtime)) {}

ChunkDecision WindowPolicy::beforeChunk(const ChunkContext& context) {
    if (windows_.alwaysOpen() || !isScheduled_(context.jobId))
        return {};
    const Microseconds now = realtime_();
    if (windows_.isOpen(now))
        return {};
    const std::time_t opens = static_cast<std::time_t>(
        std::chrono::floor<std::chrono::seconds>(windows_.nextOpen(now)).count());
    std::tm local{};
    localtime_r(&opens, &local);
    ChunkDecision decision;
    decision.defer = true;
    decision.reason = fmt::format("deferred: outside Window= (opens again at {:02}:{:02})",
                                  local.tm_hour, local.tm_min);
    return decision;
}

StorageHealthPolicy::StorageHealthPolicy(IsScheduled isScheduled, Check check)
    : isScheduled_(std::move(isScheduled)), check_(std::move(check)) {}

ChunkDecision StorageHealthPolicy::beforeChunk(const ChunkContext& context) {
    if (context.mount == nullptr || !isScheduled_(context.jobId))
        return {};
    ChunkDecision decision;
    if (auto reason = check_(*context.mount)) {
        decision.defer = true;
        decision.reason = "deferred: " + *reason;
    }
    return decision;
}

} // namespace thintrim
