// SPDX-License-Identifier: GPL-2.0-or-later
// Window=: parsing, and open/close in local time across midnight and across
// a daylight saving change. The time zone is a POSIX TZ string, so the test
// needs no tzdata.
#include "base/error.h"
#include "catch.h"
#include "config/window.h"

#include <cstdlib>
#include <ctime>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

// Central European time with its daylight saving rules.
void useBerlinTime() {
    ::setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
    ::tzset();
}

// Local civil time -> real time, as the user writes it.
Microseconds local(int year, int month, int day, int hour, int minute) {
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_isdst = -1;
    return std::chrono::seconds(std::mktime(&tm));
}

WindowSet windows(std::initializer_list<const char*> texts) {
    std::vector<TimeWindow> parsed;
    for (const char* text : texts)
        parsed.push_back(parseTimeWindow(text, "Window"));
    return WindowSet(parsed);
}

} // namespace

TEST_CASE("a window reads HH:MM-HH:MM and prints back the same") {
    CHECK(parseTimeWindow("01:00-05:00", "w") == TimeWindow{60, 300});
    CHECK(parseTimeWindow("1:30-5:00", "w") == TimeWindow{90, 300});
    CHECK(parseTimeWindow("22:00-24:00", "w") == TimeWindow{1320, 0});
    CHECK(formatTimeWindow(parseTimeWindow("22:15-02:00", "w")) == "22:15-02:00");
}

TEST_CASE("a bad window is refused with what was expected") {
    for (const char* text : {"01:00", "1-5", "25:00-01:00", "01:60-02:00", "01:00-01:00",
                             "aa:bb-cc:dd", "01:00-05:00x", "-05:00", "24:00-01:00"}) {
        INFO(text);
        try {
            (void)parseTimeWindow(text, "t.conf:3: [Schedule] Window");
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::InvalidArgument);
            CHECK_THAT(e.what(), thintrim::test::Contains("t.conf:3: [Schedule] Window") &&
                                     thintrim::test::Contains("HH:MM-HH:MM"));
        }
    }
}

TEST_CASE("a window opens and closes in local time") {
    useBerlinTime();
    const WindowSet night = windows({"01:00-05:00"});
    CHECK_FALSE(night.isOpen(local(2026, 1, 14, 0, 59)));
    CHECK(night.isOpen(local(2026, 1, 14, 1, 0)));
    CHECK(night.isOpen(local(2026, 1, 14, 4, 59)));
    CHECK_FALSE(night.isOpen(local(2026, 1, 14, 5, 0)));
    CHECK(night.nextOpen(local(2026, 1, 14, 12, 0)) == local(2026, 1, 15, 1, 0));
    CHECK(night.nextOpen(local(2026, 1, 14, 2, 0)) == local(2026, 1, 14, 2, 0));
    CHECK(night.closesAt(local(2026, 1, 14, 2, 0)) == local(2026, 1, 14, 5, 0));
    CHECK_FALSE(night.closesAt(local(2026, 1, 14, 6, 0)));
}

TEST_CASE("a window may cross midnight") {
    useBerlinTime();
    const WindowSet late = windows({"22:00-02:00"});
    CHECK(late.isOpen(local(2026, 1, 14, 23, 30)));
    CHECK(late.isOpen(local(2026, 1, 15, 0, 30)));
    CHECK(late.isOpen(local(2026, 1, 15, 1, 59)));
    CHECK_FALSE(late.isOpen(local(2026, 1, 15, 2, 0)));
    CHECK_FALSE(late.isOpen(local(2026, 1, 15, 21, 59)));
    // Open at 23:30, it closes after midnight, the next day.
    CHECK(late.closesAt(local(2026, 1, 14, 23, 30)) == local(2026, 1, 15, 2, 0));
    CHECK(late.nextOpen(local(2026, 1, 15, 3, 0)) == local(2026, 1, 15, 22, 0));
    const auto spans = late.openSpans(local(2026, 1, 14, 0, 0), local(2026, 1, 16, 0, 0));
    REQUIRE(spans.size() == 3);
    CHECK(spans[0] == TimeSpan{local(2026, 1, 14, 0, 0), local(2026, 1, 14, 2, 0)});
    CHECK(spans[1] == TimeSpan{local(2026, 1, 14, 22, 0), local(2026, 1, 15, 2, 0)});
    CHECK(spans[2] == TimeSpan{local(2026, 1, 15, 22, 0), local(2026, 1, 16, 0, 0)});
}

TEST_CASE("several windows; touching ones merge") {
    useBerlinTime();
    const WindowSet two = windows({"12:00-13:00", "01:00-03:00", "03:00-04:00"});
    CHECK(two.isOpen(local(2026, 1, 14, 12, 30)));
    CHECK(two.closesAt(local(2026, 1, 14, 2, 0)) == local(2026, 1, 14, 4, 0));
    CHECK(two.nextOpen(local(2026, 1, 14, 5, 0)) == local(2026, 1, 14, 12, 0));
    Microseconds open{0};
    for (const TimeSpan& span : two.openSpans(local(2026, 1, 14, 0, 0), local(2026, 1, 21, 0, 0)))
        open += span.end - span.start;
    CHECK(open == 7 * 4h);
}

TEST_CASE("a window follows daylight saving time") {
    useBerlinTime();
    // 2026-03-29: clocks go from 02:00 to 03:00; the window is an hour shorter.
    const WindowSet night = windows({"01:00-05:00"});
    const auto spans = night.openSpans(local(2026, 3, 29, 0, 0), local(2026, 3, 29, 12, 0));
    REQUIRE(spans.size() == 1);
    CHECK(spans[0].end - spans[0].start == 3h);
    CHECK(night.isOpen(local(2026, 3, 29, 4, 30)));
}

TEST_CASE("no window is always open") {
    const WindowSet always;
    CHECK(always.alwaysOpen());
    CHECK(always.isOpen(local(2026, 1, 14, 12, 0)));
    CHECK(always.nextOpen(42s) == 42s);
    CHECK_FALSE(always.closesAt(42s));
}
