// SPDX-License-Identifier: GPL-2.0-or-later
#include "state/schedule.h"

#include "config/window.h"

#include <algorithm>
#include <ctime>
#include <limits>
#include <variant>

#include <time.h>

namespace thintrim {

namespace {

// How long a failed attempt waits before the next one (capped by Interval).
// Long enough not to hammer a device that is failing, short enough that a
// transient error (a busy filesystem, a restarted hypervisor) costs an hour,
// not a week.
constexpr Microseconds kRetryBackoff = std::chrono::hours(1);

// FNV-1a, then a SplitMix64 finaliser: fixed arithmetic on bytes, so the
// splay does not change with the compiler or standard library the way
// std::hash may; the finaliser spreads the few bits that differ between
// similar identities over the whole word.
class StableHash {
public:
    void add(const void* data, std::size_t size) {
        const auto* bytes = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) {
            state_ ^= bytes[i];
            state_ *= 0x100000001b3ULL;
        }
    }
    [[nodiscard]] std::uint64_t value() const {
        std::uint64_t z = state_ + 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_ = 0xcbf29ce484222325ULL;
};

std::uint64_t slotHash(const sd_id128_t& machineKey, std::string_view identity) {
    StableHash hash;
    hash.add(machineKey.bytes, sizeof(machineKey.bytes));
    hash.add(identity.data(), identity.size());
    return hash.value();
}

// The period number holding `at` (floor division: times before the origin
// belong to negative periods).
std::int64_t periodOf(Microseconds at, Microseconds interval) {
    const Microseconds::rep offset = at.count() - kSlotOrigin.count();
    const Microseconds::rep length = interval.count();
    Microseconds::rep period = offset / length;
    if (offset % length != 0 && offset < 0)
        --period;
    return period;
}

Microseconds periodStart(std::int64_t period, Microseconds interval) {
    Microseconds::rep start = 0;
    if (__builtin_mul_overflow(period, interval.count(), &start))
        return period > 0 ? Microseconds::max() : Microseconds::min();
    return saturatingAdd(kSlotOrigin, Microseconds(start));
}

Microseconds clockNow(clockid_t clock) {
    timespec now{};
    ::clock_gettime(clock, &now);
    return std::chrono::duration_cast<Microseconds>(std::chrono::seconds(now.tv_sec) +
                                                    std::chrono::nanoseconds(now.tv_nsec));
}

std::uint64_t thresholdBytes(const SizeOrPercent& threshold, std::uint64_t sizeBytes) {
    if (const auto* percent = std::get_if<Percent>(&threshold))
        return static_cast<std::uint64_t>(static_cast<double>(sizeBytes) * percent->value / 100.0);
    return std::get<std::uint64_t>(threshold);
}

bool reachedFreedSpaceThreshold(const ScheduleConfig& config,
                                const ScheduledFilesystem& filesystem) {
    std::uint64_t threshold = thresholdBytes(config.freedSpaceThreshold, filesystem.sizeBytes);
    // Zero is "off"; a percentage of an unknown (0) size must not make every
    // sample a trigger.
    if (threshold == 0 || !filesystem.history.freeBytesAtLastTrim)
        return false;
    return freedSinceLastTrim(filesystem.history, filesystem.freeBytes,
                              filesystem.writtenSinceLastTrim) >= threshold;
}

// Longest lead before a deadline: twice a trim that took a day must not
// start a week early.
constexpr Microseconds kLongestDeadlineLead = std::chrono::hours(12);

bool lastAttemptFailed(const FilesystemHistory& history) {
    if (!history.lastTrimResult)
        return false;
    switch (*history.lastTrimResult) {
    case TrimOutcome::Success:
    case TrimOutcome::Unsupported:
        return false;
    case TrimOutcome::Failed:
    case TrimOutcome::Cancelled:
    case TrimOutcome::Skipped:
        return true;
    }
    return true;
}

} // namespace

std::optional<sd_id128_t> readMachineSplayKey() {
    sd_id128_t key{};
    if (sd_id128_get_machine_app_specific(kSplayAppId, &key) < 0)
        return std::nullopt;
    return key;
}

Microseconds splay(const sd_id128_t& machineKey, std::string_view identity,
                   Microseconds randomizedDelay) {
    if (randomizedDelay.count() <= 0)
        return Microseconds(0);
    // The modulo's bias is below window / 2^64: nothing for a window in µs.
    auto window = static_cast<std::uint64_t>(randomizedDelay.count());
    return Microseconds(static_cast<Microseconds::rep>(slotHash(machineKey, identity) % window));
}

Microseconds slotInPeriod(const ScheduleConfig& config, const sd_id128_t& machineKey,
                          std::string_view identity, std::int64_t period) {
    const Microseconds start = periodStart(period, config.interval);
    const Microseconds spread = std::min(config.randomizedDelay, config.interval);
    const WindowSet windows(config.window);
    if (windows.alwaysOpen())
        return saturatingAdd(start, splay(machineKey, identity, spread));
    // Spread over the open time of [start, start + spread): an offset into
    // the period would put every slot outside the windows at their opening.
    const std::vector<TimeSpan> open = windows.openSpans(start, saturatingAdd(start, spread));
    Microseconds openTotal{0};
    for (const TimeSpan& span : open)
        openTotal += span.end - span.start;
    if (openTotal.count() == 0)
        return windows.nextOpen(saturatingAdd(start, splay(machineKey, identity, spread)));
    Microseconds offset = splay(machineKey, identity, openTotal);
    for (const TimeSpan& span : open) {
        if (offset < span.end - span.start)
            return span.start + offset;
        offset -= span.end - span.start;
    }
    return open.back().end; // not reached: offset < openTotal
}

Microseconds firstSlotFrom(const ScheduleConfig& config, const sd_id128_t& machineKey,
                           std::string_view identity, Microseconds at) {
    const std::int64_t period = periodOf(at, config.interval);
    const Microseconds slot = slotInPeriod(config, machineKey, identity, period);
    if (slot >= at || period == std::numeric_limits<std::int64_t>::max())
        return slot;
    return slotInPeriod(config, machineKey, identity, period + 1);
}

ClockReading readClocks() {
    return {clockNow(CLOCK_REALTIME), clockNow(CLOCK_BOOTTIME)};
}

std::vector<Microseconds> upcomingDeadlines(const ScheduleConfig& config, Microseconds after) {
    std::vector<Microseconds> deadlines;
    if (config.trimBefore.empty())
        return deadlines;
    const auto seconds =
        static_cast<std::time_t>(std::chrono::floor<std::chrono::seconds>(after).count());
    std::tm today{};
    localtime_r(&seconds, &today);
    constexpr int kDaysAhead = 3;
    for (int day = 0; day <= kDaysAhead; ++day) {
        for (const DailyDeadline& deadline : config.trimBefore) {
            std::tm local = today;
            local.tm_mday += day;
            local.tm_hour = deadline.minute / 60;
            local.tm_min = deadline.minute % 60;
            local.tm_sec = 0;
            local.tm_isdst = -1; // the offset in force that day
            const Microseconds at = std::chrono::seconds(std::mktime(&local));
            if (at > after)
                deadlines.push_back(at);
        }
    }
    std::sort(deadlines.begin(), deadlines.end());
    deadlines.erase(std::unique(deadlines.begin(), deadlines.end()), deadlines.end());
    return deadlines;
}

std::optional<Microseconds> deadlineDue(const ScheduleConfig& config,
                                        const ScheduledFilesystem& filesystem, ClockReading now) {
    // Not only filesystems whose free space grew: writing a file and
    // deleting another strands space without growing free space (the
    // stranded-space benchmark's ext4 never did), and a repeated ext4 trim
    // costs little.
    if (config.trimBefore.empty())
        return std::nullopt;
    const FilesystemHistory& history = filesystem.history;
    const Microseconds lead = std::min(
        saturatingAdd(config.trimBeforeLead, 2 * history.lastTrimDuration), kLongestDeadlineLead);
    // A completion time after now comes from a wrong clock: counted as none.
    const Microseconds lastCompleted =
        history.lastCompleted <= now.realtime ? history.lastCompleted : Microseconds{0};
    for (const Microseconds deadline : upcomingDeadlines(config, now.realtime)) {
        const Microseconds start = deadline - lead;
        if (lastCompleted < start)
            return start;
    }
    return std::nullopt;
}

DueTime dueTime(const ScheduleConfig& config, const sd_id128_t& machineKey,
                const ScheduledFilesystem& filesystem, ClockReading now) {
    const FilesystemHistory& history = filesystem.history;
    const Microseconds bootDone = saturatingAdd(now.bootTime(), config.bootDelay);

    // Times after now come from a clock that was wrong when they were
    // written; trusting them could postpone trims for years.
    bool completedBefore =
        history.lastCompleted.count() != 0 && history.lastCompleted <= now.realtime;
    DueTime due;
    if (completedBefore) {
        due = {firstSlotFrom(config, machineKey, filesystem.identity,
                             saturatingAdd(history.lastCompleted, config.interval / 2)),
               DueReason::Interval};
        const Microseconds spacing = std::max(
            config.earlyTrimSpacing, history.lastTrimDuration > std::chrono::days(1)
                                         ? Microseconds{std::chrono::days(kEarlyTrimDutyFactor)}
                                         : kEarlyTrimDutyFactor * history.lastTrimDuration);
        const Microseconds early =
            std::max(now.realtime, saturatingAdd(history.lastCompleted, spacing));
        if (reachedFreedSpaceThreshold(config, filesystem) && early < due.at)
            due = {early, DueReason::FreedSpace};
    } else {
        // Counted from when the daemon first saw it (or boot), not from now:
        // "the first slot after now" would move on forever.
        const Microseconds firstSeen = std::max(filesystem.seenSince, bootDone);
        due = {firstSlotFrom(config, machineKey, filesystem.identity, firstSeen),
               DueReason::NeverTrimmed};
    }

    if (const std::optional<Microseconds> deadline = deadlineDue(config, filesystem, now);
        deadline && *deadline < due.at)
        due = {*deadline, DueReason::Deadline};

    if (lastAttemptFailed(history) && history.lastTrimFinished <= now.realtime) {
        Microseconds retry =
            saturatingAdd(history.lastTrimFinished, std::min(config.interval, kRetryBackoff));
        if (retry > due.at)
            due = {retry, DueReason::Retry};
    }

    due.at = std::max(due.at, bootDone);
    const WindowSet windows(config.window);
    // A time already past is due now, if the window is open now.
    if (!windows.alwaysOpen())
        due.at = windows.nextOpen(std::max(due.at, now.realtime));
    return due;
}

NextDue nextDue(const ScheduleConfig& config, const sd_id128_t& machineKey,
                const std::vector<ScheduledFilesystem>& filesystems, bool suspended,
                ClockReading now) {
    NextDue next;
    if (suspended)
        return next;
    for (const ScheduledFilesystem& filesystem : filesystems) {
        DueTime due = dueTime(config, machineKey, filesystem, now);
        if (!next.earliest || due.at < *next.earliest)
            next.earliest = due.at;
        if (due.at <= now.realtime)
            next.dueNow.push_back({filesystem.mountPoint, due.reason});
    }
    return next;
}

std::uint64_t freedSinceLastTrim(const FilesystemHistory& history, std::uint64_t freeBytes,
                                 std::uint64_t writtenSinceLastTrim) {
    if (!history.freeBytesAtLastTrim)
        return 0;
    const std::uint64_t gained = saturatingAdd(freeBytes, writtenSinceLastTrim);
    return gained > *history.freeBytesAtLastTrim ? gained - *history.freeBytesAtLastTrim : 0;
}

} // namespace thintrim
