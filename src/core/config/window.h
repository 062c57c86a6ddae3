// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/units.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// A daily trim window in local time, `Window=01:00-05:00`. An end at or before
// the start crosses midnight (`22:00-02:00` is open from 22:00 to 02:00 the
// next day).
struct TimeWindow {
    int startMinute = 0; // minutes after local midnight, 0..1439
    int endMinute = 0;   // 0..1439; != startMinute

    bool operator==(const TimeWindow&) const = default;
};

// "H:MM" or "HH:MM" on a 24-hour clock, as minutes after local midnight
// (0..1439); nullopt for anything else.
[[nodiscard]] std::optional<int> parseTimeOfDay(std::string_view text);

// "HH:MM-HH:MM" (24-hour clock; "24:00" as an end means midnight). Throws
// Error(InvalidArgument) naming `what` and saying what is accepted. A window
// with its end equal to its start is refused: it would be either empty or
// the whole day, and leaving Window= empty already means the whole day.
[[nodiscard]] TimeWindow parseTimeWindow(std::string_view text, std::string_view what);
// "01:00-05:00".
[[nodiscard]] std::string formatTimeWindow(const TimeWindow& window);

// A span of real time [start, end).
struct TimeSpan {
    Microseconds start{0};
    Microseconds end{0};
    bool operator==(const TimeSpan&) const = default;
};

// The union of daily windows, as real-time spans. Local time comes from the
// process's time zone (TZ, /etc/localtime) through localtime_r/mktime, so a
// window follows daylight saving time. An empty set is always open.
class WindowSet {
public:
    WindowSet() = default;
    explicit WindowSet(std::vector<TimeWindow> windows);

    [[nodiscard]] bool alwaysOpen() const { return windows_.empty(); }
    [[nodiscard]] bool isOpen(Microseconds at) const;
    // `at` itself when open, else the next opening; nullopt when none within
    // a few days (cannot happen for a valid window).
    [[nodiscard]] Microseconds nextOpen(Microseconds at) const;
    // When the window open at `at` closes; nullopt when closed at `at` or
    // always open.
    [[nodiscard]] std::optional<Microseconds> closesAt(Microseconds at) const;
    // The open spans overlapping [from, to), clipped to it, in order, merged.
    [[nodiscard]] std::vector<TimeSpan> openSpans(Microseconds from, Microseconds to) const;

private:
    std::vector<TimeWindow> windows_;
};

} // namespace thintrim
