// SPDX-License-Identifier: GPL-2.0-or-later
// Pacing=auto with injected readings: back off when foreground I/O suffers,
// recover when quiet, never below the floor; and the readers of
// /proc/pressure/io and /proc/diskstats.
#include "catch.h"
#include "temp_dir.h"
#include "trim/pacing.h"

#include <fstream>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;
constexpr std::uint64_t GiB = 1ULL << 30;

IoInterval quiet() {
    return {0.5, 0.8};
}
IoInterval pressure(double percent) {
    return {percent, std::nullopt};
}
IoInterval latency(double ms) {
    return {0.0, ms};
}

} // namespace

TEST_CASE("quiet storage: the chunk grows from the floor to ChunkSize, no waits") {
    PacingController pacing({.maxChunk = 1 * GiB, .floorChunk = 64 * MiB});
    CHECK(pacing.chunk() == 64 * MiB); // slow start
    std::uint64_t previous = pacing.chunk();
    for (int i = 0; i < 8; ++i) {
        const auto decision = pacing.afterChunk(quiet(), quiet());
        CHECK(decision.wait == 0us);
        CHECK(decision.waitingReason.empty());
        CHECK(decision.chunk > previous);
        previous = decision.chunk;
    }
    CHECK(pacing.chunk() == 1 * GiB);
    CHECK(pacing.afterChunk(quiet(), quiet()).chunk == 1 * GiB); // capped
}

TEST_CASE("I/O pressure: wait and halve the chunk, down to the floor") {
    PacingController pacing({.maxChunk = 1 * GiB, .floorChunk = 64 * MiB});
    for (int i = 0; i < 10; ++i)
        (void)pacing.afterChunk(quiet(), quiet());
    REQUIRE(pacing.chunk() == 1 * GiB);

    auto decision = pacing.afterChunk(quiet(), pressure(34.2));
    CHECK(decision.waitingReason == "I/O pressure 34 %");
    CHECK(decision.chunk == 512 * MiB);
    CHECK(decision.wait == 1s);
    decision = pacing.afterChunk(quiet(), pressure(50));
    CHECK(decision.chunk == 256 * MiB);
    CHECK(decision.wait == 2s);
    for (int i = 0; i < 10; ++i)
        decision = pacing.afterChunk(quiet(), pressure(90));
    // The floor and the longest wait: a trim still finishes.
    CHECK(decision.chunk == 64 * MiB);
    CHECK(decision.wait == 10s);
}

TEST_CASE("pressure below the limit is no reason to wait") {
    PacingController pacing({});
    CHECK(pacing.afterChunk(quiet(), pressure(19.9)).waitingReason.empty());
    CHECK_FALSE(pacing.afterChunk(quiet(), pressure(20)).waitingReason.empty());
}

TEST_CASE("pressure judged against the pressure while the trim waited") {
    PacingController pacing({.maxChunk = 1 * GiB, .floorChunk = 64 * MiB});
    // A foreground job keeps the pressure at 30 % on its own: the first
    // probe cannot tell, so the trim waits once.
    REQUIRE_FALSE(pacing.afterChunk(quiet(), pressure(30)).waitingReason.empty());
    pacing.afterWait(pressure(30));
    CHECK(pacing.quietPressurePercent() == thintrim::test::Approx(30));
    // Then only what the trim adds counts.
    CHECK(pacing.afterChunk(quiet(), pressure(45)).waitingReason.empty());
    const auto decision = pacing.afterChunk(quiet(), pressure(52));
    CHECK(decision.waitingReason == "I/O pressure 52 % (30 % while waiting)");
    CHECK(decision.wait == 1s);
    // The quiet pressure follows later waits, smoothed.
    pacing.afterWait(pressure(10));
    CHECK(pacing.quietPressurePercent() == thintrim::test::Approx(24));
    pacing.afterWait(IoInterval{}); // no PSI: nothing learnt
    CHECK(pacing.quietPressurePercent() == thintrim::test::Approx(24));
}

TEST_CASE("foreground latency during a chunk against the usual latency") {
    PacingController pacing({.maxChunk = 1 * GiB, .floorChunk = 64 * MiB});
    (void)pacing.afterChunk(latency(1.0), latency(1.0)); // learns "usually 1 ms"
    REQUIRE(pacing.usualLatencyMs());

    SECTION("within twice the usual plus a margin: fine") {
        CHECK(pacing.afterChunk(latency(2.9), latency(1.0)).waitingReason.empty());
    }
    SECTION("slower: back off, and say by how much") {
        const auto decision = pacing.afterChunk(latency(12.0), latency(1.0));
        CHECK(decision.waitingReason == "disk latency 12.0 ms (usually 1.0 ms)");
        CHECK(decision.wait == 1s);
    }
    SECTION("then recovery: the wait ends and the chunk grows back") {
        (void)pacing.afterChunk(latency(12.0), latency(1.0));
        (void)pacing.afterChunk(latency(12.0), latency(1.0));
        const std::uint64_t shrunk = pacing.chunk();
        const auto decision = pacing.afterChunk(latency(1.2), latency(1.0));
        CHECK(decision.wait == 0us);
        CHECK(decision.chunk > shrunk);
    }
}

TEST_CASE("without a usual latency, an absolute limit") {
    PacingController pacing({});
    CHECK(pacing.afterChunk(latency(15), {}).waitingReason.empty());
    CHECK(pacing.afterChunk(latency(25), {}).waitingReason == "disk latency 25.0 ms");
}

TEST_CASE("ChunkSize below the floor, and ChunkSize=0 (one call)") {
    PacingController small({.maxChunk = 16 * MiB, .floorChunk = 64 * MiB});
    CHECK(small.chunk() == 16 * MiB);
    CHECK(small.afterChunk(quiet(), pressure(90)).chunk == 16 * MiB);
    PacingController whole({.maxChunk = 0});
    CHECK(whole.chunk() == 0);
    const auto decision = whole.afterChunk(quiet(), pressure(90));
    CHECK(decision.chunk == 0);
    CHECK(decision.wait == 1s);
}

TEST_CASE("intervals from counters") {
    IoSample a{1'000'000us, 5'000, 100, 300};
    IoSample b{1'250'000us, 90'000, 150, 400};
    IoInterval interval = ioBetween(a, b);
    REQUIRE(interval.pressurePercent);
    CHECK(*interval.pressurePercent == thintrim::test::Approx(34.0));
    REQUIRE(interval.latencyMs);
    CHECK(*interval.latencyMs == thintrim::test::Approx(2.0));

    SECTION("too few I/Os say nothing about latency") {
        b.ios = 105;
        CHECK_FALSE(ioBetween(a, b).latencyMs);
    }
    SECTION("counters that went backwards say nothing") {
        b.ios = 10;
        b.pressureStallUs = 0;
        CHECK_FALSE(ioBetween(a, b).latencyMs);
        CHECK_FALSE(ioBetween(a, b).pressurePercent);
    }
    SECTION("no PSI") {
        a.pressureStallUs.reset();
        CHECK_FALSE(ioBetween(a, b).pressurePercent);
    }
}

TEST_CASE("/proc/pressure/io and /proc/diskstats") {
    CHECK(parsePressureTotal("some avg10=1.50 avg60=0.20 avg300=0.05 total=123456\n"
                             "full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n") == 123456u);
    CHECK_FALSE(parsePressureTotal("full avg10=0.00 total=99\n"));
    CHECK_FALSE(parsePressureTotal("some total=x\n"));

    // Linux 6.1: reads, merges, sectors, ms; writes ...; in flight, io ms,
    // weighted ms; discards ...; flushes.
    const char* diskstats =
        "   8       0 sda 1000 10 8000 500 2000 20 16000 1500 0 900 2000 77 0 9999 8888 5 6\n"
        "   8       1 sda1 900 10 7000 450 1900 20 15000 1400 0 800 1800 77 0 9999 8888 0 0\n"
        "   8      16 sdb 10 0 80 5 20 0 160 15 0 9 20 0 0 0 0 0 0\n"
        " 253       0 dm-0 1 2 3\n";
    const Diskstats rows = parseDiskstats(diskstats);
    CHECK(rows.at("sda1").writtenSectors == 15000);
    CHECK_FALSE(rows.contains("dm-0")); // a short line is skipped
    const DiskCounters both = sumDiskCounters(rows, {"sda", "sdb"});
    CHECK(both.devices == 2);
    CHECK(both.ios == 3030);
    CHECK(both.ioMs == 2020); // discard time (8888) left out
    CHECK(sumDiskCounters(rows, {"dm-0"}).devices == 0);

    test::TempDir dir;
    std::ofstream(dir.path() / "io") << "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n";
    std::ofstream(dir.path() / "diskstats") << diskstats;
    SystemPaths paths;
    paths.ioPressure = dir.path() / "io";
    paths.diskstats = dir.path() / "diskstats";
    const IoSample sample = sampleIo(paths, {"sdb"}, 7s);
    CHECK(sample.at == 7s);
    CHECK(sample.pressureStallUs == 42u);
    CHECK(sample.ios == 30u);
    CHECK(sample.ioMs == 20u);
    paths.ioPressure = dir.path() / "absent";
    paths.diskstats = dir.path() / "absent";
    const IoSample none = sampleIo(paths, {"sdb"}, 7s);
    CHECK_FALSE(none.pressureStallUs);
    CHECK_FALSE(none.ios);
}
