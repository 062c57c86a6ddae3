// SPDX-License-Identifier: GPL-2.0-or-later
#include "config/window.h"

#include "base/error.h"

#include <algorithm>
#include <charconv>
#include <ctime>

#include <fmt/format.h>

namespace thintrim {

namespace {

constexpr int kMinutesPerDay = 24 * 60;
constexpr Microseconds kDay = std::chrono::days(1);
// How far ahead nextOpen() and closesAt() look: a daily window opens within a
// day, plus slack for a daylight saving change.
constexpr Microseconds kLookAhead = std::chrono::days(3);
// openSpans() walks local days; a longer range is cut here (ten years of
// daily windows, a few thousand mktime() calls at most).
constexpr std::int64_t kMaxDays = 3660;

std::optional<int> parseClock(std::string_view text, bool isEnd) {
    if (isEnd && text == "24:00")
        return 0; // the midnight that ends a day
    return parseTimeOfDay(text);
}

std::time_t toSeconds(Microseconds at) {
    return static_cast<std::time_t>(std::chrono::floor<std::chrono::seconds>(at).count());
}

Microseconds fromSeconds(std::time_t seconds) {
    return std::chrono::seconds(seconds);
}

// Local midnight of the day `offsetDays` after the local day of `day`, plus
// `minute` minutes, as real time. mktime() normalises the overflowing fields
// and, with tm_isdst = -1, applies the offset in force then.
Microseconds localTime(const std::tm& day, std::int64_t offsetDays, int minute) {
    std::tm local = day;
    local.tm_mday += static_cast<int>(offsetDays);
    local.tm_hour = minute / 60;
    local.tm_min = minute % 60;
    local.tm_sec = 0;
    local.tm_isdst = -1;
    return fromSeconds(std::mktime(&local));
}

} // namespace

TimeWindow parseTimeWindow(std::string_view text, std::string_view what) {
    auto invalid = [&](std::string_view problem) {
        return Error(ErrorCode::InvalidArgument,
                     fmt::format("{}: \"{}\": {}; expected HH:MM-HH:MM in local time, "
                                 "e.g. 01:00-05:00 (22:00-02:00 crosses midnight)",
                                 what, text, problem));
    };
    const std::size_t dash = text.find('-');
    if (dash == std::string_view::npos)
        throw invalid("no - between start and end");
    const std::optional<int> start = parseClock(text.substr(0, dash), false);
    const std::optional<int> end = parseClock(text.substr(dash + 1), true);
    if (!start || !end)
        throw invalid("not a time of day");
    if (*start == *end)
        throw invalid("starts where it ends (leave Window= empty for the whole day)");
    return {*start, *end};
}

std::string formatTimeWindow(const TimeWindow& window) {
    return fmt::format("{:02}:{:02}-{:02}:{:02}", window.startMinute / 60, window.startMinute % 60,
                       window.endMinute / 60, window.endMinute % 60);
}

WindowSet::WindowSet(std::vector<TimeWindow> windows) : windows_(std::move(windows)) {}

std::vector<TimeSpan> WindowSet::openSpans(Microseconds from, Microseconds to) const {
    std::vector<TimeSpan> spans;
    if (to <= from)
        return spans;
    if (windows_.empty())
        return {{from, to}};
    const std::int64_t days = std::min<std::int64_t>((to - from) / kDay + 2, kMaxDays);
    // A window that crosses midnight opened the local day before `from`.
    const std::time_t fromSeconds = toSeconds(from - kDay);
    std::tm firstDay{};
    localtime_r(&fromSeconds, &firstDay);
    for (std::int64_t day = 0; day <= days; ++day) {
        for (const TimeWindow& window : windows_) {
            const bool crossesMidnight = window.endMinute <= window.startMinute;
            TimeSpan span{localTime(firstDay, day, window.startMinute),
                          localTime(firstDay, day + (crossesMidnight ? 1 : 0), window.endMinute)};
            span.start = std::max(span.start, from);
            span.end = std::min(span.end, to);
            if (span.start < span.end)
                spans.push_back(span);
        }
    }
    std::sort(spans.begin(), spans.end(),
              [](const TimeSpan& a, const TimeSpan& b) { return a.start < b.start; });
    std::vector<TimeSpan> merged;
    for (const TimeSpan& span : spans) {
        if (!merged.empty() && span.start <= merged.back().end)
            merged.back().end = std::max(merged.back().end, span.end);
        else
            merged.push_back(span);
    }
    return merged;
}

bool WindowSet::isOpen(Microseconds at) const {
    return nextOpen(at) == at;
}

Microseconds WindowSet::nextOpen(Microseconds at) const {
    if (windows_.empty())
        return at;
    const std::vector<TimeSpan> spans = openSpans(at, at + kLookAhead);
    return spans.empty() ? at : spans.front().start;
}

std::optional<Microseconds> WindowSet::closesAt(Microseconds at) const {
    if (windows_.empty())
        return std::nullopt;
    const std::vector<TimeSpan> spans = openSpans(at, at + kLookAhead);
    if (spans.empty() || spans.front().start != at)
        return std::nullopt;
    return spans.front().end;
}

std::optional<int> parseTimeOfDay(std::string_view text) {
    const std::size_t colon = text.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 2 || text.size() != colon + 3)
        return std::nullopt;
    int hours = 0;
    int minutes = 0;
    const char* hoursEnd = text.data() + colon;
    if (std::from_chars(text.data(), hoursEnd, hours).ptr != hoursEnd)
        return std::nullopt;
    const char* end = text.data() + text.size();
    if (std::from_chars(hoursEnd + 1, end, minutes).ptr != end)
        return std::nullopt;
    if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59)
        return std::nullopt;
    return hours * 60 + minutes;
}

} // namespace thintrim
