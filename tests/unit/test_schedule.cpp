// SPDX-License-Identifier: GPL-2.0-or-later
#include "catch.h"
#include "state/schedule.h"

#include <array>
#include <cstdlib>
#include <ctime>
#include <set>
#include <string>
#include <vector>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t GiB = 1ULL << 30;
constexpr Microseconds kNow = 1'700'000'000'000'000us; // 2023-11-14, a fixed "now"
constexpr Microseconds kLongUptime = std::chrono::days(10);
constexpr std::chrono::weeks kWeek{1};

// Fixed machine keys, as sd_id128_get_machine_app_specific() would return.
constexpr sd_id128_t kMachineA =
    SD_ID128_ARRAY(5f, 2a, 90, 11, 4e, c3, 47, 0b, 8d, 61, 2c, 7e, a0, 19, b4, 33);
constexpr sd_id128_t kMachineB =
    SD_ID128_ARRAY(c1, 07, 6d, e2, 38, 9a, 41, f5, b2, 4c, 10, 5e, 7d, 86, 0a, 9f);

// The n-th of many machines whose ids differ in few bits: harder to spread
// than real ids, which are HMAC output.
sd_id128_t machineNumber(std::uint64_t n) {
    sd_id128_t id{};
    for (std::size_t i = 0; i < 8; ++i)
        id.bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
    return id;
}

ClockReading clockAt(Microseconds realtime, Microseconds sinceBoot = kLongUptime) {
    return {realtime, sinceBoot};
}

// The built-in defaults with version 1.1's freshness settings
// (FreedSpaceThreshold=8G, EarlyTrimSpacing=1d): the numbers these tests
// reason with. The freshness defaults have tests of their own.
ScheduleConfig weeklySchedule() {
    ScheduleConfig config;
    config.freedSpaceThreshold = 8 * GiB;
    config.earlyTrimSpacing = std::chrono::days(1);
    return config;
}

ScheduledFilesystem filesystem(std::string mountPoint, std::string identity) {
    ScheduledFilesystem fs;
    fs.mountPoint = std::move(mountPoint);
    fs.identity = std::move(identity);
    fs.sizeBytes = 100 * GiB;
    fs.freeBytes = 40 * GiB;
    return fs;
}

// A filesystem whose last trim completed successfully at `when`, with 40 GiB free then.
ScheduledFilesystem trimmedAt(Microseconds when, std::string mountPoint = "/",
                              std::string identity = "uuid-root") {
    ScheduledFilesystem fs = filesystem(std::move(mountPoint), std::move(identity));
    fs.history.lastTrimStarted = when - 1min;
    fs.history.lastTrimFinished = when;
    fs.history.lastTrimResult = TrimOutcome::Success;
    fs.history.lastCompleted = when;
    fs.history.freeBytesAtLastTrim = 40 * GiB;
    return fs;
}

void failAt(ScheduledFilesystem& fs, Microseconds when, TrimOutcome outcome) {
    fs.history.lastTrimStarted = when - 1min;
    fs.history.lastTrimFinished = when;
    fs.history.lastTrimResult = outcome;
}

} // namespace

TEST_CASE("splay is stable for a machine and a filesystem") {
    Microseconds window = 100min;
    CHECK(splay(kMachineA, "uuid-root", window) == splay(kMachineA, "uuid-root", window));
    CHECK(splay(kMachineA, "uuid-root", window) != splay(kMachineB, "uuid-root", window));
    CHECK(splay(kMachineA, "uuid-root", window) != splay(kMachineA, "uuid-home", window));
}

TEST_CASE("splay stays below RandomizedDelay, and 0 turns it off") {
    for (std::uint64_t n = 0; n < 200; ++n) {
        for (Microseconds window : std::array<Microseconds, 5>{1us, 7us, 1s, 100min, kWeek}) {
            Microseconds value = splay(machineNumber(n), "fs", window);
            CHECK(value >= 0us);
            CHECK(value < window);
        }
        CHECK(splay(machineNumber(n), "fs", 0us) == 0us);
    }
}

TEST_CASE("splay spreads machines over the whole window") {
    const Microseconds window = 100min;
    std::array<int, 10> deciles{};
    for (std::uint64_t n = 0; n < 1000; ++n) {
        auto value = splay(machineNumber(n), "0b6c5a3e-1111-4e2a-9d53-1c2a3b4c5d6e", window);
        ++deciles.at(static_cast<std::size_t>(value.count() * 10 / window.count()));
    }
    for (std::size_t i = 0; i < deciles.size(); ++i) {
        INFO("decile " << i << ": " << deciles[i]);
        // 100 expected; a good hash stays well inside this.
        CHECK(deciles[i] > 60);
        CHECK(deciles[i] < 140);
    }
}

TEST_CASE("splay spreads the filesystems of one machine too") {
    std::set<std::int64_t> distinct;
    std::array<int, 10> deciles{};
    for (int n = 0; n < 1000; ++n) {
        auto value = splay(kMachineA, "/dev/vd" + std::to_string(n), 100min);
        distinct.insert(value.count());
        ++deciles.at(static_cast<std::size_t>(value.count() * 10 / Microseconds(100min).count()));
    }
    CHECK(distinct.size() > 990);
    for (int count : deciles)
        CHECK(count > 60);
}

TEST_CASE("a filesystem is due at its first slot Interval/2 after its last trim") {
    ScheduleConfig config = weeklySchedule();
    ScheduledFilesystem fs = trimmedAt(kNow - 3 * std::chrono::days(1));
    const Microseconds expected =
        firstSlotFrom(config, kMachineA, "uuid-root", fs.history.lastCompleted + kWeek / 2);
    REQUIRE(expected > kNow);

    SECTION("not yet") {
        DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.at == expected);
        CHECK(due.reason == DueReason::Interval);
        NextDue next = nextDue(config, kMachineA, {fs}, false, clockAt(kNow));
        CHECK(next.earliest == expected);
        CHECK(next.dueNow.empty());
    }
    SECTION("at the due time") {
        NextDue next = nextDue(config, kMachineA, {fs}, false, clockAt(expected));
        REQUIRE(next.dueNow.size() == 1);
        CHECK(next.dueNow[0].mountPoint == "/");
        CHECK(next.dueNow[0].reason == DueReason::Interval);
    }
    SECTION("just before it") {
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(expected - 1us)).dueNow.empty());
    }
}

TEST_CASE("slots: one per Interval, at a stable offset, a whole Interval apart") {
    const ScheduleConfig config = weeklySchedule();
    const Microseconds slot = slotInPeriod(config, kMachineA, "uuid-root", 2900);
    CHECK(slot >= kSlotOrigin + 2900 * kWeek);
    CHECK(slot < kSlotOrigin + 2901 * kWeek);
    CHECK(slotInPeriod(config, kMachineA, "uuid-root", 2901) == slot + kWeek);
    CHECK(slotInPeriod(config, kMachineB, "uuid-root", 2900) != slot);
    CHECK(firstSlotFrom(config, kMachineA, "uuid-root", slot) == slot);
    CHECK(firstSlotFrom(config, kMachineA, "uuid-root", slot + 1us) == slot + kWeek);

    // A trim that started at its slot and took a while: the next one is the
    // next slot, exactly a week after the first.
    ScheduledFilesystem fs = trimmedAt(slot + 20min);
    CHECK(dueTime(config, kMachineA, fs, clockAt(slot + 1h)).at == slot + kWeek);
    // A trim run by hand the day before the slot: that slot is skipped.
    fs = trimmedAt(slot - std::chrono::days(1));
    CHECK(dueTime(config, kMachineA, fs, clockAt(slot - 20h)).at == slot + kWeek);
}

TEST_CASE("slots spread machines over the whole Interval by default") {
    const ScheduleConfig config = weeklySchedule();
    std::array<int, 7> days{};
    for (std::uint64_t n = 0; n < 7000; ++n) {
        const Microseconds offset =
            slotInPeriod(config, machineNumber(n), "uuid-root", 0) - kSlotOrigin;
        ++days.at(static_cast<std::size_t>(offset / std::chrono::days(1)));
    }
    for (int count : days) {
        CHECK(count > 850); // 1000 expected
        CHECK(count < 1150);
    }
}

TEST_CASE("RandomizedDelay narrows the spread; 0 puts every slot at the period's start") {
    ScheduleConfig config = weeklySchedule();
    config.randomizedDelay = 2h;
    for (std::uint64_t n = 0; n < 100; ++n) {
        const Microseconds offset =
            slotInPeriod(config, machineNumber(n), "uuid-root", 3) - (kSlotOrigin + 3 * kWeek);
        CHECK(offset >= 0us);
        CHECK(offset < 2h);
    }
    config.randomizedDelay = 0us;
    CHECK(slotInPeriod(config, kMachineA, "uuid-root", 3) == kSlotOrigin + 3 * kWeek);
    // Larger than the Interval: the Interval.
    config.randomizedDelay = 2 * kWeek;
    CHECK(slotInPeriod(config, kMachineA, "uuid-root", 3) ==
          slotInPeriod(weeklySchedule(), kMachineA, "uuid-root", 3));
}

TEST_CASE("absurd intervals saturate instead of wrapping into the past") {
    ScheduleConfig config = weeklySchedule();
    config.interval = Microseconds::max() / 2;
    ScheduledFilesystem fs = trimmedAt(kNow - 1h);
    const DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
    CHECK(due.at > kNow);
}

TEST_CASE("an unsupported result waits a whole interval, like a success") {
    ScheduledFilesystem fs = trimmedAt(kNow - 1h);
    fs.history.lastTrimResult = TrimOutcome::Unsupported;
    DueTime due = dueTime(weeklySchedule(), kMachineA, fs, clockAt(kNow));
    CHECK(due.reason == DueReason::Interval);
    CHECK(due.at >= kNow - 1h + kWeek / 2);
}

TEST_CASE("a new filesystem is first trimmed at its slot, never at daemon start") {
    ScheduleConfig config = weeklySchedule();
    ScheduledFilesystem fs = filesystem("/home", "uuid-home");
    fs.seenSince = kNow; // a daemon installed and started now
    const Microseconds slot = firstSlotFrom(config, kMachineA, "uuid-home", kNow);

    SECTION("not at start") {
        DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.reason == DueReason::NeverTrimmed);
        CHECK(due.at == slot);
        CHECK(due.at >= kNow);
        CHECK(due.at < kNow + kWeek);
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(kNow + 1s)).dueNow.size() ==
              (slot <= kNow + 1s ? 1U : 0U));
    }
    SECTION("at the slot, and still when the daemon wakes a little late") {
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(slot - 1us)).dueNow.empty());
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(slot)).dueNow.size() == 1);
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(slot + 10min)).dueNow.size() == 1);
    }
    SECTION("a restart of the daemon before the slot keeps it") {
        fs.seenSince = slot - 1h;
        CHECK(dueTime(config, kMachineA, fs, clockAt(slot - 1h)).at == slot);
    }
    SECTION("without a first-seen time: the first slot after boot + BootDelay") {
        fs.seenSince = 0us;
        ClockReading justBooted = clockAt(kNow, 1min);
        CHECK(dueTime(config, kMachineA, fs, justBooted).at ==
              firstSlotFrom(config, kMachineA, "uuid-home", kNow + 4min));
    }
}

TEST_CASE("an overdue filesystem catches up after the boot delay") {
    ScheduleConfig config = weeklySchedule();
    ScheduledFilesystem fs = trimmedAt(kNow - std::chrono::days(30)); // the machine was off
    ClockReading justBooted = clockAt(kNow, 30s);
    DueTime due = dueTime(config, kMachineA, fs, justBooted);
    CHECK(due.at == kNow - 30s + 5min);
    CHECK(due.reason == DueReason::Interval);
    CHECK(nextDue(config, kMachineA, {fs}, false, justBooted).dueNow.empty());
    CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(kNow + 270s, 300s)).dueNow.size() == 1);

    config.bootDelay = 0us;
    CHECK(nextDue(config, kMachineA, {fs}, false, justBooted).dueNow.size() == 1);
}

TEST_CASE("freeing enough space makes a filesystem due early") {
    ScheduleConfig config = weeklySchedule(); // 8 GiB
    ScheduledFilesystem fs = trimmedAt(kNow - std::chrono::days(1));

    SECTION("an absolute threshold") {
        fs.freeBytes = 40 * GiB + 8 * GiB - 1;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
        fs.freeBytes = 40 * GiB + 8 * GiB;
        DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.reason == DueReason::FreedSpace);
        CHECK(due.at == kNow);
        auto next = nextDue(config, kMachineA, {fs}, false, clockAt(kNow));
        REQUIRE(next.dueNow.size() == 1);
        CHECK(next.dueNow[0].reason == DueReason::FreedSpace);
    }
    SECTION("a percentage of the filesystem's size") {
        config.freedSpaceThreshold = Percent{10}; // of 100 GiB: 10 GiB
        fs.freeBytes = 49 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
        fs.freeBytes = 50 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::FreedSpace);
    }
    SECTION("a percentage of an unknown size never triggers") {
        config.freedSpaceThreshold = Percent{10};
        fs.sizeBytes = 0;
        fs.freeBytes = 90 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
    }
    SECTION("a threshold of 0 is off") {
        config.freedSpaceThreshold = std::uint64_t{0};
        fs.freeBytes = 100 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
    }
    SECTION("no baseline, no early trim") {
        fs.history.freeBytesAtLastTrim.reset();
        fs.freeBytes = 100 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
    }
    SECTION("shrinking free space is not freed space") {
        fs.freeBytes = 10 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
    }
    SECTION("still after the boot delay") {
        fs.freeBytes = 60 * GiB;
        DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow, 1min));
        CHECK(due.reason == DueReason::FreedSpace);
        CHECK(due.at == kNow + 4min);
    }
}

TEST_CASE("a failed attempt is retried after min(Interval, 1h)") {
    ScheduleConfig config = weeklySchedule();
    ScheduledFilesystem fs = trimmedAt(kNow - std::chrono::days(11)); // overdue
    failAt(fs, kNow - 10min,
           GENERATE(TrimOutcome::Failed, TrimOutcome::Cancelled, TrimOutcome::Skipped));

    SECTION("an hour after the failure") {
        DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.reason == DueReason::Retry);
        CHECK(due.at == kNow + 50min);
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(kNow)).dueNow.empty());
        CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(kNow + 50min)).dueNow.size() == 1);
    }
    SECTION("sooner with a short interval") {
        config.interval = 30min;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).at == kNow + 20min);
    }
    SECTION("freed space does not skip the backoff") {
        fs.freeBytes = 90 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Retry);
    }
    SECTION("a failure never pulls a trim forward") {
        fs = trimmedAt(kNow - std::chrono::days(1));
        Microseconds regular = dueTime(config, kMachineA, fs, clockAt(kNow)).at;
        failAt(fs, kNow - 10min, TrimOutcome::Failed);
        DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.at == regular);
        CHECK(due.reason == DueReason::Interval);
    }
    SECTION("a filesystem that never completed a trim is retried too") {
        ScheduledFilesystem fresh = filesystem("/data", "uuid-data");
        failAt(fresh, kNow - 10min, TrimOutcome::Failed);
        DueTime due = dueTime(config, kMachineA, fresh, clockAt(kNow));
        CHECK(due.reason == DueReason::Retry);
        CHECK(due.at == kNow + 50min);
    }
}

TEST_CASE("times from the future are not trusted") {
    // Trimmed while the clock was a year ahead, then corrected: waiting for
    // "a week after next year" would stop trims for a year.
    ScheduledFilesystem fs = trimmedAt(kNow + std::chrono::days(365));
    DueTime due = dueTime(weeklySchedule(), kMachineA, fs, clockAt(kNow));
    CHECK(due.reason == DueReason::NeverTrimmed);
    CHECK(due.at ==
          firstSlotFrom(weeklySchedule(), kMachineA, "uuid-root", kNow - kLongUptime + 5min));
    CHECK(due.at < kNow);
}

TEST_CASE("nextDue gives the earliest time and everything due now") {
    ScheduleConfig config = weeklySchedule();
    ScheduledFilesystem root = trimmedAt(kNow - std::chrono::days(11), "/", "uuid-root");
    ScheduledFilesystem home = trimmedAt(kNow - std::chrono::days(2), "/home", "uuid-home");
    ScheduledFilesystem var = trimmedAt(kNow - std::chrono::days(3), "/var", "uuid-var");
    ScheduledFilesystem fresh = filesystem("/data", "uuid-data");
    std::vector<ScheduledFilesystem> all{root, home, var, fresh};

    NextDue next = nextDue(config, kMachineA, all, false, clockAt(kNow));
    REQUIRE(next.dueNow.size() == 2);
    CHECK(next.dueNow[0].mountPoint == "/");
    CHECK(next.dueNow[1].mountPoint == "/data");
    CHECK(next.earliest == std::min(dueTime(config, kMachineA, root, clockAt(kNow)).at,
                                    dueTime(config, kMachineA, fresh, clockAt(kNow)).at));

    NextDue later = nextDue(config, kMachineA, {home, var}, false, clockAt(kNow));
    CHECK(later.dueNow.empty());
    CHECK(later.earliest == dueTime(config, kMachineA, var, clockAt(kNow)).at);

    NextDue none = nextDue(config, kMachineA, {}, false, clockAt(kNow));
    CHECK_FALSE(none.earliest);
    CHECK(none.dueNow.empty());
}

TEST_CASE("nothing is due while suspended") {
    std::vector<ScheduledFilesystem> all{trimmedAt(kNow - std::chrono::days(30)),
                                         filesystem("/data", "uuid-data")};
    NextDue next = nextDue(weeklySchedule(), kMachineA, all, true, clockAt(kNow));
    CHECK_FALSE(next.earliest);
    CHECK(next.dueNow.empty());
}

TEST_CASE("freed space since the last trim: free-space growth plus what was written") {
    constexpr std::uint64_t MiB = std::uint64_t{1} << 20;
    FilesystemHistory history;
    CHECK(freedSinceLastTrim(history, 10 * GiB, 0) == 0);
    CHECK(freedSinceLastTrim(history, 10 * GiB, GiB) == 0); // no trim to count from
    history.freeBytesAtLastTrim = 10 * GiB;
    CHECK(freedSinceLastTrim(history, 13 * GiB, 0) == 3 * GiB);
    CHECK(freedSinceLastTrim(history, 9 * GiB, 0) == 0);
    // A file written and another as large deleted: free space as before.
    CHECK(freedSinceLastTrim(history, 10 * GiB, 256 * MiB) == 256 * MiB);
    // Only written: it all went into the new file, nothing freed.
    CHECK(freedSinceLastTrim(history, 10 * GiB - 256 * MiB, 256 * MiB) == 0);
    // Written, then that and 1 GiB more deleted.
    CHECK(freedSinceLastTrim(history, 11 * GiB, 256 * MiB) == GiB + 256 * MiB);
    CHECK(freedSinceLastTrim(history, UINT64_MAX, UINT64_MAX) == UINT64_MAX - 10 * GiB);
}

TEST_CASE("the freshness defaults: 64 MiB written and deleted is trimmed at the next sample") {
    constexpr std::uint64_t MiB = std::uint64_t{1} << 20;
    const ScheduleConfig config; // FreedSpaceThreshold=64M, EarlyTrimSpacing=1min
    ScheduledFilesystem fs = trimmedAt(kNow - 2min);
    fs.history.lastTrimDuration = 1s;
    fs.writtenSinceLastTrim = 63 * MiB; // free space as at the last trim
    CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
    fs.writtenSinceLastTrim = 64 * MiB;
    DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
    CHECK(due.reason == DueReason::FreedSpace);
    CHECK(due.at == kNow);

    SECTION("not within a minute of the last trim") {
        fs = trimmedAt(kNow - 30s);
        fs.writtenSinceLastTrim = GiB;
        due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.reason == DueReason::FreedSpace);
        CHECK(due.at == kNow + 30s);
    }
    SECTION("a slow trim waits 20 times its duration: trimming takes at most 1/20 of the time") {
        fs.history.lastTrimDuration = 30s; // xfs, discarding all its free space
        due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.reason == DueReason::FreedSpace);
        CHECK(due.at == kNow - 2min + 10min);
    }
    SECTION("a duration from a corrupt state file does not overflow the spacing") {
        fs.history.lastTrimDuration = Microseconds::max();
        due = dueTime(config, kMachineA, fs, clockAt(kNow));
        CHECK(due.reason == DueReason::Interval); // 20 days: the weekly slot comes first
    }
}

TEST_CASE("due reasons have log names") {
    CHECK(dueReasonName(DueReason::NeverTrimmed) == "never-trimmed");
    CHECK(dueReasonName(DueReason::Interval) == "interval");
    CHECK(dueReasonName(DueReason::FreedSpace) == "freed-space");
    CHECK(dueReasonName(DueReason::Retry) == "retry");
}

TEST_CASE("the real clocks and machine key are usable") {
    ClockReading now = readClocks();
    CHECK(now.realtime > kNow);
    CHECK(now.sinceBoot > 0us);
    CHECK(now.bootTime() < now.realtime);

    // A build container may have no machine id; where there is one, it is stable.
    if (auto key = readMachineSplayKey()) {
        auto again = readMachineSplayKey();
        REQUIRE(again);
        CHECK(sd_id128_equal(*key, *again));
        CHECK(splay(*key, "uuid-root", 100min) < 100min);
    }
}

TEST_CASE("early trims keep EarlyTrimSpacing after the last trim of any kind") {
    ScheduleConfig config = weeklySchedule(); // 8 GiB, spacing 1d
    ScheduledFilesystem fs = trimmedAt(kNow - 2h);
    fs.freeBytes = 60 * GiB; // 20 GiB freed since
    DueTime due = dueTime(config, kMachineA, fs, clockAt(kNow));
    CHECK(due.reason == DueReason::FreedSpace);
    CHECK(due.at == kNow - 2h + std::chrono::days(1));
    CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(kNow)).dueNow.empty());

    config.earlyTrimSpacing = 0us;
    CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).at == kNow);

    SECTION("never later than the regular slot") {
        config.earlyTrimSpacing = 2 * kWeek;
        CHECK(dueTime(config, kMachineA, fs, clockAt(kNow)).reason == DueReason::Interval);
    }
}

TEST_CASE("Window=: slots fall inside the windows, other due times wait for the opening") {
    ::setenv("TZ", "UTC0", 1);
    ::tzset();
    ScheduleConfig config = weeklySchedule();
    config.window = {parseTimeWindow("01:00-03:00", "w")};
    const Microseconds day = std::chrono::days(1);
    std::array<int, 7> perDay{};
    for (std::uint64_t n = 0; n < 700; ++n) {
        const Microseconds slot = slotInPeriod(config, machineNumber(n), "uuid-root", 2900);
        const Microseconds timeOfDay = slot % day;
        CHECK(timeOfDay >= 1h);
        CHECK(timeOfDay < 3h);
        ++perDay.at(static_cast<std::size_t>((slot - (kSlotOrigin + 2900 * kWeek)) / day));
    }
    for (int count : perDay)
        CHECK(count > 60); // 100 expected: spread over the week's windows

    // An overdue filesystem in the afternoon waits for 01:00.
    const Microseconds afternoon = (kNow / day) * day + 14h;
    ScheduledFilesystem fs = trimmedAt(afternoon - 30 * day);
    const DueTime due = dueTime(config, kMachineA, fs, clockAt(afternoon));
    CHECK(due.at == (afternoon / day + 1) * day + 1h);
    CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(afternoon)).dueNow.empty());
    CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(due.at)).dueNow.size() == 1);
}

TEST_CASE(
    "TrimBefore=: freed space is trimmed before each deadline, whatever the other rules say") {
    ::setenv("TZ", "UTC0", 1);
    ::tzset();
    const Microseconds day = std::chrono::days(1);
    const Microseconds midnight = (kNow / day) * day;
    ScheduleConfig config = weeklySchedule(); // Interval 1w, 8 GiB threshold, spacing 1d
    config.trimBefore = {{5 * 60 + 30}};      // 05:30
    // Trimmed yesterday at 10:00 in 5 minutes; 1 GiB freed since: far below
    // FreedSpaceThreshold, within EarlyTrimSpacing, days before the next slot.
    ScheduledFilesystem fs = trimmedAt(midnight - day + 10h);
    fs.history.lastTrimDuration = 5min;
    fs.freeBytes = 41 * GiB;
    const Microseconds start = midnight + 5h + 30min - 30min - 2 * 5min; // 04:50

    DueTime due = dueTime(config, kMachineA, fs, clockAt(midnight + 3h));
    CHECK(due.reason == DueReason::Deadline);
    CHECK(due.at == start);
    CHECK(dueReasonName(due.reason) == "deadline");
    CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(start - 1s)).dueNow.empty());
    NextDue next = nextDue(config, kMachineA, {fs}, false, clockAt(start));
    REQUIRE(next.dueNow.size() == 1);
    CHECK(next.dueNow[0].reason == DueReason::Deadline);
    // Space freed late in the lead time still goes before the deadline.
    CHECK(nextDue(config, kMachineA, {fs}, false, clockAt(midnight + 5h + 29min)).dueNow.size() ==
          1);
    // Past the deadline, the next one is tomorrow's.
    CHECK(dueTime(config, kMachineA, fs, clockAt(midnight + 6h)).at == start + day);

    SECTION("TrimBeforeLead and the last trim's duration set the lead, at most 12 h") {
        config.trimBeforeLead = 2h;
        CHECK(dueTime(config, kMachineA, fs, clockAt(midnight + 1h)).at ==
              midnight + 5h + 30min - 2h - 10min);
        fs.history.lastTrimDuration = 10h;
        CHECK(dueTime(config, kMachineA, fs, clockAt(midnight - 12h)).at ==
              midnight + 5h + 30min - 12h);
    }
    SECTION(
        "one trim per deadline: a trim in the lead time counts, the next deadline is tomorrow") {
        ScheduledFilesystem done = trimmedAt(start + 3min);
        done.history.lastTrimDuration = 5min;
        done.freeBytes = 42 * GiB; // deleted more after that trim
        due = dueTime(config, kMachineA, done, clockAt(start + 10min));
        CHECK(due.reason == DueReason::Deadline);
        CHECK(due.at == start + day);
    }
    SECTION("also without free-space growth: writing and deleting strands space unseen") {
        fs.freeBytes = 40 * GiB;
        CHECK(dueTime(config, kMachineA, fs, clockAt(midnight + 3h)).reason == DueReason::Deadline);
        fs.sizeBytes = 0; // no sample yet
        fs.freeBytes = 0;
        CHECK(dueTime(config, kMachineA, fs, clockAt(midnight + 3h)).reason == DueReason::Deadline);
    }
    SECTION("never trimmed: trimmed before the deadline") {
        ScheduledFilesystem fresh = filesystem("/srv", "uuid-srv");
        fresh.seenSince = midnight + 1h;
        due = dueTime(config, kMachineA, fresh, clockAt(midnight + 2h));
        CHECK(due.reason == DueReason::Deadline);
        CHECK(due.at == midnight + 5h); // TrimBeforeLead alone: no duration on record
    }
    SECTION("BootDelay still holds") {
        due = dueTime(config, kMachineA, fs, clockAt(midnight + 5h, 1min));
        CHECK(due.at == midnight + 5h + 4min);
    }
    SECTION("several deadlines: the next one counts") {
        config.trimBefore = {{5 * 60 + 30}, {13 * 60}};
        ScheduledFilesystem done = trimmedAt(start + 3min);
        done.history.lastTrimDuration = 5min;
        done.freeBytes = 42 * GiB;
        CHECK(dueTime(config, kMachineA, done, clockAt(midnight + 6h)).at ==
              midnight + 13h - 40min);
    }
}

TEST_CASE("TrimBefore= is local time and follows daylight saving time") {
    // Central Europe: UTC+1, UTC+2 from the last Sunday of March.
    ::setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    ::tzset();
    ScheduleConfig config = weeklySchedule();
    config.trimBefore = {{5 * 60 + 30}};
    // Friday 2023-03-24 12:00 UTC; clocks go forward on Sunday the 26th.
    const Microseconds fridayNoon = 1'679'659'200'000'000us;
    const std::vector<Microseconds> deadlines = upcomingDeadlines(config, fridayNoon);
    REQUIRE(deadlines.size() == 3); // Saturday to Monday: the local days up to three ahead
    CHECK(deadlines[0] == fridayNoon + 12h + 4h + 30min); // Saturday 05:30 CET = 04:30 UTC
    CHECK(deadlines[1] == deadlines[0] + 23h);            // Sunday 05:30 CEST = 03:30 UTC
    CHECK(deadlines[2] == deadlines[1] + std::chrono::days(1));
    ::setenv("TZ", "UTC0", 1);
    ::tzset();
}
