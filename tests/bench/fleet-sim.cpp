// SPDX-License-Identifier: GPL-2.0-or-later
// Fleet simulation: 10,000 guests with random machine ids get thintrim in one
// rollout hour and run for four weeks with the default configuration. How
// many trims start in each hour, for
// - thintrim: the real schedule code (src/core/state/schedule.h), default config;
// - fstrim.timer: OnCalendar=weekly (Monday 00:00) + RandomizedDelaySec=100min,
//   a fresh random delay each week, as util-linux ships it;
// - the old "trim at start": every daemon trims when it starts, then
//   Interval + its splay (up to RandomizedDelay=100min) after each trim.
// Prints the histogram (one row per day, one column per hour) and the
// peak-to-mean ratio of each; exits 1 when thintrim's is above the target.
//
//   fleet-sim [MACHINES] [WEEKS] [SEED]
#include "config/config.h"
#include "state/schedule.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

constexpr double kTargetPeakToMean = 1.5;
// How long a trim takes: what lastCompleted lags behind the start.
constexpr Microseconds kTrimDuration = 3min;
constexpr Microseconds kHour = 1h;
// The rollout starts on a Wednesday, 2026-12-02 10:00 UTC.
constexpr Microseconds kRollout = std::chrono::seconds(1'796'205'600);

struct Histogram {
    std::string name;
    std::vector<unsigned> perHour;
    unsigned long total = 0;

    Histogram(std::string label, std::size_t hours) : name(std::move(label)), perHour(hours) {}

    void add(Microseconds start) {
        if (start < kRollout)
            return;
        const auto hour = static_cast<std::size_t>((start - kRollout) / kHour);
        if (hour < perHour.size()) {
            ++perHour[hour];
            ++total;
        }
    }
    [[nodiscard]] unsigned peak() const {
        return *std::max_element(perHour.begin(), perHour.end());
    }
    [[nodiscard]] double mean() const {
        return static_cast<double>(total) / static_cast<double>(perHour.size());
    }
    [[nodiscard]] double peakToMean() const { return mean() > 0 ? peak() / mean() : 0; }

    void print() const {
        fmt::print("\n{}: {} trims, mean {:.1f}/h, peak {}/h, peak-to-mean {:.2f}\n", name, total,
                   mean(), peak(), peakToMean());
        fmt::print("day  hours 00..23 after the rollout hour\n");
        for (std::size_t day = 0; day * 24 < perHour.size(); ++day) {
            std::string row = fmt::format("{:>3} ", day);
            for (std::size_t hour = day * 24; hour < std::min(perHour.size(), day * 24 + 24);
                 ++hour)
                row += fmt::format("{:>5}", perHour[hour]);
            fmt::print("{}\n", row);
        }
    }
};

sd_id128_t randomId(std::mt19937_64& random) {
    sd_id128_t id{};
    const std::uint64_t high = random();
    const std::uint64_t low = random();
    for (std::size_t i = 0; i < 8; ++i) {
        id.bytes[i] = static_cast<std::uint8_t>(high >> (8 * i));
        id.bytes[8 + i] = static_cast<std::uint8_t>(low >> (8 * i));
    }
    return id;
}

std::string uuidText(const sd_id128_t& id) {
    char text[SD_ID128_UUID_STRING_MAX];
    return sd_id128_to_uuid_string(id, text);
}

// Monday 00:00 UTC on or after `at`.
Microseconds nextMonday(Microseconds at) {
    const Microseconds week = std::chrono::weeks(1);
    const Microseconds sinceMonday = (at - kSlotOrigin) % week;
    return sinceMonday.count() == 0 ? at : at - sinceMonday + week;
}

} // namespace

int main(int argc, char** argv) {
    const unsigned machines = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 10'000;
    const unsigned weeks = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 4;
    const std::uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 2026;
    const std::size_t hours = std::size_t{weeks} * 7 * 24;
    const Microseconds end = kRollout + hours * kHour;

    std::mt19937_64 random(seed);
    std::uniform_int_distribution<Microseconds::rep> inRolloutHour(0, kHour.count() - 1);
    std::uniform_int_distribution<Microseconds::rep> uptime(0, Microseconds(30 * 24h).count());
    std::uniform_int_distribution<Microseconds::rep> fstrimDelay(0,
                                                                 Microseconds(100min).count() - 1);

    const ScheduleConfig config; // the defaults
    const ScheduleConfig oldConfig = [] {
        ScheduleConfig old;
        old.randomizedDelay = 100min; // version 1's default
        return old;
    }();

    Histogram thintrim("thintrim 1.1 (default configuration)", hours);
    Histogram fstrim("fstrim.timer (weekly, Monday 00:00 + up to 100 min)", hours);
    Histogram atStart("thintrim 1.0 (trim at start, then Interval + splay)", hours);

    for (unsigned machine = 0; machine < machines; ++machine) {
        const sd_id128_t key = randomId(random);
        const Microseconds installed = kRollout + Microseconds(inRolloutHour(random));
        const Microseconds booted = installed - Microseconds(uptime(random));

        ScheduledFilesystem root;
        root.mountPoint = std::string(1, '/'); // = "/" trips GCC 12's -Wrestrict under ASan
        root.identity = uuidText(randomId(random));
        root.seenSince = installed;
        root.sizeBytes = std::uint64_t{20} << 30;
        root.freeBytes = std::uint64_t{10} << 30;

        // thintrim 1.1: the daemon wakes at each due time and trims.
        Microseconds now = installed;
        while (now < end) {
            const DueTime due = dueTime(config, key, root, {now, now - booted});
            const Microseconds start = std::max(due.at, now);
            if (start >= end)
                break;
            thintrim.add(start);
            root.history.lastTrimStarted = start;
            root.history.lastTrimFinished = start + kTrimDuration;
            root.history.lastCompleted = start + kTrimDuration;
            root.history.lastTrimResult = TrimOutcome::Success;
            root.history.freeBytesAtLastTrim = root.freeBytes;
            now = root.history.lastCompleted;
        }

        // fstrim.timer
        for (Microseconds monday = nextMonday(installed); monday < end;
             monday += std::chrono::weeks(1))
            fstrim.add(monday + Microseconds(fstrimDelay(random)));

        // thintrim 1.0: at start, then lastCompleted + Interval + splay.
        const Microseconds splayed = splay(key, root.identity, oldConfig.randomizedDelay);
        for (Microseconds start = installed; start < end;
             start += kTrimDuration + oldConfig.interval + splayed)
            atStart.add(start);
    }

    fmt::print("fleet simulation: {} machines, random machine ids (seed {}), {} weeks from a "
               "rollout of all machines within one hour\n",
               machines, seed, weeks);
    for (const Histogram* histogram : {&thintrim, &fstrim, &atStart})
        histogram->print();
    fmt::print("\n{:<55} {:>8} {:>8} {:>13}\n", "model", "mean/h", "peak/h", "peak-to-mean");
    for (const Histogram* histogram : {&thintrim, &fstrim, &atStart})
        fmt::print("{:<55} {:>8.1f} {:>8} {:>13.2f}\n", histogram->name, histogram->mean(),
                   histogram->peak(), histogram->peakToMean());
    const bool met = thintrim.peakToMean() <= kTargetPeakToMean;
    fmt::print("\ntarget: thintrim peak-to-mean <= {:.1f}: {} ({:.2f})\n", kTargetPeakToMean,
               met ? "met" : "NOT MET", thintrim.peakToMean());
    return met ? 0 : 1;
}
