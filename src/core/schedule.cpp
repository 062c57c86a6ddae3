// SPDX-License-Identifier: GPL-2.0-or-later
#include "schedule.h"

#include <algorithm>
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
    return freedSinceLastTrim(filesystem.history, filesystem.freeBytes) >= threshold;
}

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
    StableHash hash;
    hash.add(machineKey.bytes, sizeof(machineKey.bytes));
    hash.add(identity.data(), identity.size());
    // The modulo's bias is below window / 2^64: nothing for a window in µs.
    auto window = static_cast<std::uint64_t>(randomizedDelay.count());
    return Microseconds(static_cast<Microseconds::rep>(hash.value() % window));
}

ClockReading readClocks() {
    return {clockNow(CLOCK_REALTIME), clockNow(CLOCK_BOOTTIME)};
}

std::string_view dueReasonName(DueReason reason) {
    switch (reason) {
    case DueReason::NeverTrimmed:
        return "never-trimmed";
    case DueReason::Interval:
        return "interval";
    case DueReason::FreedSpace:
        return "freed-space";
    case DueReason::Retry:
        return "retry";
    }
    return "interval";
}

DueTime dueTime(const ScheduleConfig& config, const sd_id128_t& machineKey,
                const ScheduledFilesystem& filesystem, ClockReading now) {
    const FilesystemHistory& history = filesystem.history;
    const Microseconds bootDone = saturatingAdd(now.bootTime(), config.bootDelay);

    // Times after now come from a clock that was wrong when they were
    // written; trusting them could postpone trims for years.
    bool completedBefore =
        history.lastCompleted.count() != 0 && history.lastCompleted <= now.realtime;
    DueTime due{bootDone, DueReason::NeverTrimmed};
    if (completedBefore) {
        // Times from the state file are bounded only by the type: saturate.
        due = {saturatingAdd(saturatingAdd(history.lastCompleted, config.interval),
                             splay(machineKey, filesystem.identity, config.randomizedDelay)),
               DueReason::Interval};
        if (reachedFreedSpaceThreshold(config, filesystem) && now.realtime < due.at)
            due = {now.realtime, DueReason::FreedSpace};
    }

    if (lastAttemptFailed(history) && history.lastTrimFinished <= now.realtime) {
        Microseconds retry =
            saturatingAdd(history.lastTrimFinished, std::min(config.interval, kRetryBackoff));
        if (retry > due.at)
            due = {retry, DueReason::Retry};
    }

    due.at = std::max(due.at, bootDone);
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

std::uint64_t freedSinceLastTrim(const FilesystemHistory& history, std::uint64_t freeBytes) {
    if (!history.freeBytesAtLastTrim || freeBytes <= *history.freeBytesAtLastTrim)
        return 0;
    return freeBytes - *history.freeBytesAtLastTrim;
}

} // namespace thintrim
