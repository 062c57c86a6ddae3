// SPDX-License-Identifier: GPL-2.0-or-later
// The engine's gentle policies with an injected clock and injected readings:
// pacing probes after each chunk and backs off, windows and busy storage
// defer scheduled jobs only.
#include "catch.h"
#include "engine/trim_policies.h"

#include <cstdlib>
#include <ctime>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;
constexpr std::uint64_t GiB = 1ULL << 30;

// Counters that advance as the test says: `stallPerSecond` µs of I/O stall
// per second, and foreground I/Os of `latencyMs` each, 100 per second.
struct FakeCounters {
    double stallShare = 0.0; // 0..1
    double latencyMs = 1.0;

    IoSample at(Microseconds now) const {
        const double seconds = std::chrono::duration<double>(now).count();
        IoSample sample;
        sample.at = now;
        sample.pressureStallUs = static_cast<std::uint64_t>(seconds * 1e6 * stallShare);
        sample.ios = static_cast<std::uint64_t>(seconds * 100);
        sample.ioMs = static_cast<std::uint64_t>(seconds * 100 * latencyMs);
        return sample;
    }
};

struct PacingFixture {
    Mount mount;
    FakeCounters counters;
    std::vector<std::string> askedDisks;
    PacingPolicy pacing{[](const Mount&) {
                            return std::vector<std::string>{"sda", "sdb"};
                        },
                        [this](const std::vector<std::string>& disks, Microseconds now) {
                            askedDisks = disks;
                            return counters.at(now);
                        }};
    ChunkContext context;

    PacingFixture() {
        mount.mountPoint = "/srv";
        context.jobId = 7;
        context.mount = &mount;
        context.chunkSize = 1 * GiB;
        context.runStarted = 100s;
        context.now = 100s;
    }
    // The engine ran the chunk it was told: the cursor moves, time passes.
    void chunkDone(std::uint64_t bytes, Microseconds took) {
        context.cursor += bytes;
        context.now += took;
        context.lastChunk = ChunkResult{0, bytes, took, {}};
    }
};

} // namespace

TEST_CASE("pacing: slow start, a probe after each chunk, growth when quiet") {
    PacingFixture f;
    ChunkDecision first = f.pacing.beforeChunk(f.context);
    CHECK(first.notBefore == 0us);
    CHECK(first.chunkSize == 64 * MiB);
    CHECK(f.askedDisks == std::vector<std::string>{"sda", "sdb"});

    f.chunkDone(64 * MiB, 1s);
    ChunkDecision probe = f.pacing.beforeChunk(f.context);
    CHECK(probe.notBefore == f.context.now + 250ms);
    CHECK_FALSE(probe.defer);

    f.context.now = probe.notBefore;
    ChunkDecision go = f.pacing.beforeChunk(f.context);
    CHECK(go.notBefore == 0us);
    CHECK(go.chunkSize > 64 * MiB);
    CHECK(f.pacing.status().empty());
}

TEST_CASE("pacing: I/O pressure makes it wait, says so, and recovers") {
    PacingFixture f;
    (void)f.pacing.beforeChunk(f.context);
    f.chunkDone(64 * MiB, 1s);
    f.counters.stallShare = 0.34;
    ChunkDecision probe = f.pacing.beforeChunk(f.context);
    f.context.now = probe.notBefore;
    ChunkDecision wait = f.pacing.beforeChunk(f.context);
    CHECK(wait.notBefore == f.context.now + 1s);
    CHECK(wait.chunkSize == 64 * MiB); // the floor
    CHECK(f.pacing.status() == "waiting: I/O pressure 34 %");

    // Asked again before the wait is over (another policy woke the engine).
    f.context.now += 500ms;
    CHECK(f.pacing.beforeChunk(f.context).notBefore == wait.notBefore);

    f.context.now = wait.notBefore;
    CHECK(f.pacing.beforeChunk(f.context).notBefore == 0us);
    CHECK(f.pacing.status().empty());

    // The pressure stayed at 34 % during the wait: it is the machine's own,
    // and the same pressure after the next chunk is no reason to wait.
    f.chunkDone(64 * MiB, 1s);
    probe = f.pacing.beforeChunk(f.context);
    f.context.now = probe.notBefore;
    CHECK(f.pacing.beforeChunk(f.context).notBefore == 0us);
    CHECK(f.pacing.status().empty());

    // What the trim adds to it is.
    f.chunkDone(64 * MiB, 1s);
    f.counters.stallShare = 0.9;
    probe = f.pacing.beforeChunk(f.context);
    f.context.now = probe.notBefore;
    CHECK(f.pacing.beforeChunk(f.context).notBefore > f.context.now);
    CHECK(f.pacing.status().starts_with("waiting: I/O pressure "));
}

TEST_CASE("pacing: Pacing=fixed has no opinion") {
    PacingFixture f;
    f.pacing.setMode(PacingMode::Fixed);
    ChunkDecision decision = f.pacing.beforeChunk(f.context);
    CHECK(decision.notBefore == 0us);
    CHECK_FALSE(decision.chunkSize);
    CHECK_FALSE(decision.defer);
}

TEST_CASE("windows defer scheduled jobs only, outside the windows") {
    ::setenv("TZ", "UTC0", 1);
    ::tzset();
    Microseconds now = std::chrono::seconds(1'796'212'800); // 2026-12-02 12:00 UTC
    WindowPolicy window{[](std::uint64_t job) { return job == 1; }, [&now] { return now; }};
    window.setWindows({parseTimeWindow("22:00-02:00", "w")});
    Mount mount;
    ChunkContext context;
    context.mount = &mount;

    context.jobId = 1;
    ChunkDecision closed = window.beforeChunk(context);
    CHECK(closed.defer);
    CHECK(closed.reason == "deferred: outside Window= (opens again at 22:00)");
    context.jobId = 2; // asked for by hand
    CHECK_FALSE(window.beforeChunk(context).defer);

    now += 11h; // 23:00: open
    context.jobId = 1;
    CHECK_FALSE(window.beforeChunk(context).defer);
    now += 3h; // 02:00 the next day: closed again, at a chunk boundary
    CHECK(window.beforeChunk(context).defer);
}

TEST_CASE("busy storage defers scheduled jobs with the reason") {
    std::optional<std::string> health = "md0 (raid1, 2 devices) is recovering a device";
    StorageHealthPolicy policy{[](std::uint64_t job) { return job == 1; },
                               [&health](const Mount&) { return health; }};
    Mount mount;
    ChunkContext context;
    context.mount = &mount;
    context.jobId = 1;
    ChunkDecision decision = policy.beforeChunk(context);
    CHECK(decision.defer);
    CHECK(decision.reason == "deferred: md0 (raid1, 2 devices) is recovering a device");
    context.jobId = 2;
    CHECK_FALSE(policy.beforeChunk(context).defer);
    context.jobId = 1;
    health.reset();
    CHECK_FALSE(policy.beforeChunk(context).defer);
}
