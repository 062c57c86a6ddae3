// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's use of the schedule (src/core/service/schedule_plan.h) with a fake
// clock: what gets queued, when the timer is armed, what NextScheduledTrim
// says. The rules themselves are tested in tests/unit/test_schedule.cpp.
#include "catch.h"
#include "service/schedule_plan.h"
#include "synthetic_catalog.h"

#include <chrono>

using namespace thintrim;
using namespace std::chrono_literals;
using thintrim::test::syntheticEntry;

namespace {

constexpr sd_id128_t kMachine =
    SD_ID128_ARRAY(01, 23, 45, 67, 89, ab, cd, ef, 01, 23, 45, 67, 89, ab, cd, ef);

// 2024-06-01 12:00 UTC (a Saturday), booted an hour ago.
const ClockReading kNow{Microseconds{1'717'243'200'000'000}, Microseconds{1h}};
// With RandomizedDelay=0 every slot is at the start of a week: Monday 00:00 UTC.
const Microseconds kMonday = kNow.realtime + 36h;

ScheduleConfig config() {
    ScheduleConfig schedule;
    schedule.interval = 7 * 24h;
    schedule.randomizedDelay = 0us; // exact times in these tests
    schedule.bootDelay = 5min;
    schedule.freedSpaceThreshold = std::uint64_t{1} << 30;
    return schedule;
}

ScheduledFilesystem trimmedAgo(std::string mountPoint, Microseconds ago) {
    ScheduledFilesystem filesystem;
    filesystem.mountPoint = mountPoint;
    filesystem.identity = "uuid-" + mountPoint;
    filesystem.history.lastCompleted = kNow.realtime - ago;
    filesystem.history.lastTrimFinished = kNow.realtime - ago;
    filesystem.history.lastTrimResult = TrimOutcome::Success;
    filesystem.history.freeBytesAtLastTrim = std::uint64_t{10} << 30;
    filesystem.sizeBytes = std::uint64_t{100} << 30;
    filesystem.freeBytes = std::uint64_t{10} << 30;
    return filesystem;
}

ScheduledFilesystem neverTrimmed(std::string mountPoint) {
    ScheduledFilesystem filesystem;
    filesystem.mountPoint = mountPoint;
    filesystem.identity = "uuid-" + mountPoint;
    return filesystem;
}

SchedulePlan plan(const std::vector<ScheduledFilesystem>& filesystems, bool suspended = false,
                  const std::set<std::string>& queued = {}, ClockReading now = kNow) {
    const ScheduleConfig schedule = config();
    return planSchedule({schedule, kMachine, filesystems, suspended, queued, now});
}

} // namespace

TEST_CASE("a never-trimmed filesystem waits for its slot, it is not queued at start") {
    const SchedulePlan result = plan({neverTrimmed("/"), trimmedAgo("/home", 24h)});
    CHECK(result.toQueue.empty());
    CHECK(result.nextTrim.at("/") == kMonday);
    // /home was trimmed yesterday: this Monday's slot is too close, the next one.
    CHECK(result.nextTrim.at("/home") == kMonday + 7 * 24h);
    REQUIRE(result.wakeAt);
    CHECK(*result.wakeAt == kMonday);

    const ClockReading atSlot{kMonday, kNow.sinceBoot + 36h};
    const SchedulePlan later =
        plan({neverTrimmed("/"), trimmedAgo("/home", 24h)}, false, {}, atSlot);
    REQUIRE(later.toQueue.size() == 1);
    CHECK(later.toQueue[0].mountPoint == "/");
    CHECK(later.toQueue[0].reason == DueReason::NeverTrimmed);
}

TEST_CASE("right after boot, overdue trims wait for BootDelay") {
    const ClockReading justBooted{kNow.realtime, Microseconds{1min}};
    const SchedulePlan result =
        plan({neverTrimmed("/"), trimmedAgo("/home", 30 * 24h)}, false, {}, justBooted);
    CHECK(result.toQueue.empty());
    const Microseconds bootDone = justBooted.bootTime() + 5min;
    CHECK(result.nextTrim.at("/") == kMonday);
    CHECK(result.nextTrim.at("/home") == bootDone);
    REQUIRE(result.wakeAt);
    CHECK(*result.wakeAt == bootDone);
}

TEST_CASE("a filesystem already queued or running is not queued again") {
    const SchedulePlan result =
        plan({trimmedAgo("/", 30 * 24h), trimmedAgo("/home", 24h)}, false, {"/"});
    CHECK(result.toQueue.empty());
    // Its due time is past: the timer must not fire for it again and again;
    // the end of its trim reschedules.
    REQUIRE(result.wakeAt);
    CHECK(*result.wakeAt == kMonday + 7 * 24h);
}

TEST_CASE("only queued filesystems: no timer at all") {
    const SchedulePlan result = plan({neverTrimmed("/")}, false, {"/"});
    CHECK(result.toQueue.empty());
    CHECK_FALSE(result.wakeAt);
}

TEST_CASE("suspended: nothing queued, no timer, NextScheduledTrim 0") {
    const SchedulePlan result = plan({neverTrimmed("/"), trimmedAgo("/home", 24h)}, true);
    CHECK(result.toQueue.empty());
    CHECK_FALSE(result.wakeAt);
    CHECK(result.nextTrim.at("/") == 0us);
    CHECK(result.nextTrim.at("/home") == 0us);
}

TEST_CASE("free space grown past the threshold makes a filesystem due early") {
    // A day after the last trim: EarlyTrimSpacing (1d) has passed.
    ScheduledFilesystem home = trimmedAgo("/home", 25h);
    home.freeBytes = std::uint64_t{12} << 30; // 2 GiB freed, threshold 1 GiB
    const SchedulePlan result = plan({home});
    REQUIRE(result.toQueue.size() == 1);
    CHECK(result.toQueue[0].reason == DueReason::FreedSpace);
    CHECK(result.nextTrim.at("/home") == kNow.realtime);

    home.freeBytes = (std::uint64_t{10} << 30) + (std::uint64_t{512} << 20); // 512 MiB
    CHECK(plan({home}).toQueue.empty());
}

TEST_CASE("a failed trim is retried after the backoff, not at once") {
    ScheduledFilesystem home = trimmedAgo("/home", 30 * 24h);
    home.history.lastTrimResult = TrimOutcome::Failed;
    home.history.lastTrimFinished = kNow.realtime - 10min;
    const SchedulePlan result = plan({home});
    CHECK(result.toQueue.empty());
    REQUIRE(result.wakeAt);
    CHECK(*result.wakeAt == home.history.lastTrimFinished + 1h);
}

TEST_CASE("no filesystems: nothing to do") {
    const SchedulePlan result = plan({});
    CHECK(result.toQueue.empty());
    CHECK_FALSE(result.wakeAt);
    CHECK(result.nextTrim.empty());
}

TEST_CASE("NextScheduledTrim is the earliest scheduled time; 0 when nothing is scheduled") {
    CHECK(plan({neverTrimmed("/"), trimmedAgo("/home", 24h)}).earliestNextTrim() == kMonday);
    CHECK(plan({neverTrimmed("/")}, true).earliestNextTrim() == 0us);
    CHECK(plan({}).earliestNextTrim() == 0us);
}

TEST_CASE("the schedule sees each trimmable filesystem with its history and fresh free space") {
    FilesystemCatalog catalog;
    catalog.replace({syntheticEntry("/", {.minor = 1}), syntheticEntry("/home", {.minor = 2}),
                     syntheticEntry("/nodiscard", {.eligible = false, .minor = 3}),
                     syntheticEntry("/proc", {.managed = false, .minor = 4})},
                    {{"/", {100, 40, {}}}, {"/home", {200, 50, {}}}}, {});
    State state;
    state.filesystems["uuid/home"].trimCount = 3;
    ScheduleInputs inputs;

    const std::vector<ScheduledFilesystem> seen = inputs.eligible(catalog, state, kNow.realtime);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].mountPoint == "/");
    CHECK(seen[0].identity == "uuid/");
    CHECK(seen[0].history.trimCount == 0u);
    CHECK(seen[0].sizeBytes == 100u);
    CHECK(seen[0].freeBytes == 40u);
    CHECK(seen[0].seenSince == kNow.realtime);
    CHECK(seen[1].mountPoint == "/home");
    CHECK(seen[1].history.trimCount == 3u);

    SECTION("first seen stays the first sighting; a sample older than a trim is left out") {
        catalog.markFreeSpaceStale("/home");
        const std::vector<ScheduledFilesystem> later =
            inputs.eligible(catalog, state, kNow.realtime + 1h);
        REQUIRE(later.size() == 2);
        CHECK(later[0].seenSince == kNow.realtime);
        CHECK(later[0].freeBytes == 40u);
        CHECK(later[1].sizeBytes == 0u);
        CHECK(later[1].freeBytes == 0u);
    }
}

TEST_CASE("the metrics file's stranded-space estimate: free space grown since the last trim") {
    FilesystemCatalog catalog;
    catalog.replace({syntheticEntry("/", {.minor = 1}), syntheticEntry("/home", {.minor = 2}),
                     syntheticEntry("/srv", {.minor = 3}),
                     syntheticEntry("/proc", {.managed = false, .minor = 4})},
                    {{"/", {100, 40, {}}}, {"/home", {200, 50, {}}}, {"/proc", {10, 10, {}}}}, {});
    State state;
    state.filesystems["uuid/"].freeBytesAtLastTrim = 25;    // 15 freed since
    state.filesystems["uuid/srv"].freeBytesAtLastTrim = 10; // trimmed, but no sample
    state.filesystems["uuid/proc"].freeBytesAtLastTrim = 0; // not managed
    state.filesystems["uuid/home"].trimCount = 0;           // never trimmed: unknown

    const auto freed = freedSinceLastTrimByIdentity(catalog, state);
    CHECK(freed == std::map<std::string, std::uint64_t, std::less<>>{{"uuid/", 15}});

    SECTION("less free space than at the last trim counts as nothing freed, not a wrap") {
        state.filesystems["uuid/"].freeBytesAtLastTrim = 60;
        CHECK(freedSinceLastTrimByIdentity(catalog, state).at("uuid/") == 0u);
    }
}
