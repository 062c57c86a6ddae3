// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/units.h"
#include "config/config.h"
#include "state/state.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <systemd/sd-id128.h>

namespace thintrim {

// When each filesystem is next trimmed. Pure functions of their inputs: the
// clocks and the machine's identity are passed in, so the daemon reads them
// once per decision and tests never sleep.
//
// The rules, for one filesystem:
// - Slots: time is cut into periods of Interval counted from Monday
//   1970-01-05 00:00 UTC; each filesystem has one slot per period, at a
//   stable offset from the period's start (a hash of the machine's splay key
//   and the filesystem's identity, below min(RandomizedDelay, Interval); the
//   default spreads slots over the whole period). With Window= set, the offset
//   counts only open time, so slots spread over the windows instead of piling
//   up at their openings. A fleet of guests thus trims its shared storage
//   evenly over the Interval, each guest at a predictable time, whenever it
//   was installed.
// - Regular: the first slot at least Interval/2 after the last completed
//   trim (so a trim that ran late, or an early one, does not cause a second
//   one right away: trims stay between Interval/2 and 3/2 Interval apart).
// - Never trimmed (or the history's time lies in the future, after a clock
//   that was wrong): the first slot after the daemon first saw the filesystem
//   (and after boot + BootDelay), never at once: installing thintrim on a
//   fleet does not make every guest trim within minutes.
// - Early: the space freed since the last completed trim (estimated by
//   freedSinceLastTrim()) reached FreedSpaceThreshold (bytes, or percent of
//   the filesystem's size): due now, but not before EarlyTrimSpacing, nor
//   before kEarlyTrimDutyFactor times the last trim's duration, after the
//   last completed trim of any kind (so trims take at most 1/20 of the time
//   however fast space is freed, on xfs too, which discards all its free
//   space each time).
// - Deadline (TrimBefore=): for each upcoming deadline D (local time), every
//   filesystem is due at D - lead, lead = TrimBeforeLead +
//   2 x its last trim's duration (at most 12 h), unless a trim completed at
//   or after D - lead already: one trim per deadline, ignoring Interval,
//   FreedSpaceThreshold and EarlyTrimSpacing (but not BootDelay, Window= or
//   the retry backoff).
// - Window: any due time outside Window= moves to the next opening.
// - Failed, cancelled or skipped last attempt: not again before
//   `lastTrimFinished + min(Interval, 1h)`. The backoff only ever delays: a
//   failed manual trim of a filesystem that is not due does not make it due.
// - Catch-up: nothing runs before boot + BootDelay, so a machine that was off
//   when trims were due catches up shortly after boot without slowing it. The
//   splay is not added again on top: catch-up time is already spread by how
//   machines boot, and BootDelay can be raised.
// - Suspended: nothing is due.

// The application id hashed with the machine id (sd_id128_get_machine_app_specific):
// the raw machine id must not leak into timings, and other programs' splays
// must not correlate with ours. Changing it moves every machine's slot.
inline constexpr sd_id128_t kSplayAppId =
    SD_ID128_ARRAY(7b, 66, 0e, 5b, bc, 9c, 4a, b8, a4, 10, e5, 9a, 08, ca, 51, 5a);

// sd_id128_get_machine_app_specific(kSplayAppId). nullopt when the machine
// has no usable /etc/machine-id (some images and containers): the caller picks
// a fallback (e.g. sd_id128_randomize(): spread, but not stable) and logs it.
[[nodiscard]] std::optional<sd_id128_t> readMachineSplayKey();

// The delay in [0, randomizedDelay) for filesystem `identity` on the machine
// whose splay key is `machineKey`; 0 when randomizedDelay is 0. The same inputs
// give the same splay on every run and every build.
[[nodiscard]] Microseconds splay(const sd_id128_t& machineKey, std::string_view identity,
                                 Microseconds randomizedDelay);

// Where the slot periods start: Monday 1970-01-05 00:00 UTC.
inline constexpr Microseconds kSlotOrigin = std::chrono::days(4);

// The slot of `identity` on the machine `machineKey` in the period number
// `period` (period 0 starts at kSlotOrigin).
[[nodiscard]] Microseconds slotInPeriod(const ScheduleConfig& config, const sd_id128_t& machineKey,
                                        std::string_view identity, std::int64_t period);
// The first slot at or after `at`.
[[nodiscard]] Microseconds firstSlotFrom(const ScheduleConfig& config, const sd_id128_t& machineKey,
                                         std::string_view identity, Microseconds at);

// Both clocks, read at one instant.
struct ClockReading {
    Microseconds realtime{0};  // CLOCK_REALTIME since the epoch: history's clock
    Microseconds sinceBoot{0}; // CLOCK_BOOTTIME: counts suspended time too

    [[nodiscard]] Microseconds bootTime() const { return realtime - sinceBoot; }
};
[[nodiscard]] ClockReading readClocks();

// One managed filesystem as the schedule sees it.
struct ScheduledFilesystem {
    std::string mountPoint;
    std::string identity;      // Mount::identity(), the splay's input
    FilesystemHistory history; // default-constructed: never trimmed
    std::uint64_t sizeBytes = 0;
    std::uint64_t freeBytes = 0; // sampled now
    // Written to its device(s) since its last completed trim started
    // (FilesystemCatalog::writtenSinceLastTrim).
    std::uint64_t writtenSinceLastTrim = 0;
    // When this daemon first saw the filesystem mounted (realtime); the first
    // trim of a never-trimmed filesystem is its first slot after this. 0:
    // unknown, counted from boot + BootDelay.
    Microseconds seenSince{0};
};

enum class DueReason {
    NeverTrimmed,
    Interval,
    FreedSpace,
    Retry,    // after a failed, cancelled or skipped attempt
    Deadline, // before a TrimBefore= deadline
};
// For logs.
inline constexpr auto kDueReasons =
    makeEnumCodec<DueReason>("due reason", {{DueReason::NeverTrimmed, "never-trimmed"},
                                            {DueReason::Interval, "interval"},
                                            {DueReason::FreedSpace, "freed-space"},
                                            {DueReason::Retry, "retry"},
                                            {DueReason::Deadline, "deadline"}});
[[nodiscard]] constexpr std::string_view dueReasonName(DueReason reason) {
    return kDueReasons.name(reason);
}

struct DueTime {
    Microseconds at{0}; // realtime; at or before now means due now
    DueReason reason = DueReason::Interval;
};

// When `filesystem` is next due, ignoring suspension (for its
// NextScheduledTrim property).
[[nodiscard]] DueTime dueTime(const ScheduleConfig& config, const sd_id128_t& machineKey,
                              const ScheduledFilesystem& filesystem, ClockReading now);

// The TrimBefore= deadlines after `after` and up to three days later, in
// order, as real time (local time of day, following daylight saving time).
[[nodiscard]] std::vector<Microseconds> upcomingDeadlines(const ScheduleConfig& config,
                                                          Microseconds after);

// When `filesystem` is due for the next TrimBefore= deadline (reason
// Deadline), before BootDelay, Window= and retries are applied; nullopt
// without deadlines.
[[nodiscard]] std::optional<Microseconds>
deadlineDue(const ScheduleConfig& config, const ScheduledFilesystem& filesystem, ClockReading now);

struct DueFilesystem {
    std::string mountPoint;
    DueReason reason;
};

struct NextDue {
    // The earliest due time among the filesystems, possibly in the past;
    // nullopt when nothing is scheduled (suspended, or no filesystems).
    std::optional<Microseconds> earliest;
    std::vector<DueFilesystem> dueNow; // in input order; empty when suspended
};

// What to trim now and when to look again. The daemon also wakes every
// CheckInterval to sample free space, which may make a filesystem due early.
[[nodiscard]] NextDue nextDue(const ScheduleConfig& config, const sd_id128_t& machineKey,
                              const std::vector<ScheduledFilesystem>& filesystems, bool suspended,
                              ClockReading now);

// Early trims wait at least this many times the last trim's duration.
inline constexpr int kEarlyTrimDutyFactor = 20;

// An estimate of the space freed since the last completed trim, what the
// next trim hands back (FreedSinceLastTrim on D-Bus): free-space growth plus
// what was written since. A filesystem that writes a file and deletes
// another as large frees space without growing free space; what it frees it
// first wrote. An upper bound: rewrites in place and the journal count too.
// 0 when unknown (no trim to count from).
[[nodiscard]] std::uint64_t freedSinceLastTrim(const FilesystemHistory& history,
                                               std::uint64_t freeBytes,
                                               std::uint64_t writtenSinceLastTrim);

} // namespace thintrim
