// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"
#include "base/units.h"
#include "catch.h"

#include <limits>

using namespace thintrim;
using namespace std::chrono_literals;

TEST_CASE("sizes take powers of 1024 and optional B/iB") {
    CHECK(parseSize("4096", "x") == 4096);
    CHECK(parseSize("512K", "x") == 512 * 1024);
    CHECK(parseSize("64M", "x") == 64ULL << 20);
    CHECK(parseSize("1G", "x") == 1ULL << 30);
    CHECK(parseSize("1GiB", "x") == 1ULL << 30);
    CHECK(parseSize("2t", "x") == 2ULL << 40);
    CHECK(parseSize("1.5G", "x") == 3ULL << 29);
    CHECK(parseSize(" 8G ", "x") == 8ULL << 30);
    CHECK(parseSize("0", "x") == 0);
    CHECK(parseSize("100B", "x") == 100);
}

TEST_CASE("bad sizes say what was given and what is accepted") {
    for (auto bad : {"", "G", "1X", "-1G", "1G5", "1 GB extra", "99999999E"}) {
        INFO(bad);
        try {
            (void)parseSize(bad, "--chunk");
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.code() == ErrorCode::InvalidArgument);
            CHECK_THAT(e.what(),
                       thintrim::test::Contains("--chunk") && thintrim::test::Contains(bad));
        }
    }
}

TEST_CASE("sizes or percentages") {
    CHECK(std::get<std::uint64_t>(parseSizeOrPercent("8G", "x")) == 8ULL << 30);
    CHECK(std::get<Percent>(parseSizeOrPercent("10%", "x")).value == 10.0);
    CHECK_THROWS_AS(parseSizeOrPercent("0%", "x"), Error);
    CHECK_THROWS_AS(parseSizeOrPercent("101%", "x"), Error);
}

TEST_CASE("rates accept an optional /s") {
    CHECK(parseRate("100M/s", "--rate") == 100ULL << 20);
    CHECK(parseRate("1G", "--rate") == 1ULL << 30);
    CHECK(parseRate("0", "--rate") == 0);
    CHECK_THROWS_AS(parseRate("fast", "--rate"), Error);
}

TEST_CASE("durations are systemd-style") {
    CHECK(parseDuration("90", "x") == 90s);
    CHECK(parseDuration("90s", "x") == 90s);
    CHECK(parseDuration("5min", "x") == 5min);
    CHECK(parseDuration("1h30min", "x") == 90min);
    CHECK(parseDuration("1h 30min", "x") == 90min);
    CHECK(parseDuration("1w", "x") == std::chrono::hours(24 * 7));
    CHECK(parseDuration("2d", "x") == 48h);
    CHECK(parseDuration("250ms", "x") == 250ms);
    CHECK(parseDuration("10us", "x") == 10us);
    CHECK(parseDuration("0", "x") == 0s);
    for (auto bad : {"", "5 fortnights", "min", "5m5", "1y"}) {
        INFO(bad);
        CHECK_THROWS_AS(parseDuration(bad, "Interval"), Error);
    }
}

TEST_CASE("sizes and durations print for people") {
    CHECK(formatSize(0) == "0 B");
    CHECK(formatSize(1023) == "1023 B");
    CHECK(formatSize(1536) == "1.5 KiB");
    CHECK(formatSize(1020678144) == "973.4 MiB");
    CHECK(formatDuration(250ms) == "250ms");
    CHECK(formatDuration(1500ms) == "1.5s");
    CHECK(formatDuration(90min) == "1h 30min");
    CHECK(formatDuration(std::chrono::hours(24 * 9)) == "1w 2d");
    CHECK(formatRelative(0us, 100s) == "never");
    CHECK(formatRelative(40s, 100s) == "1min ago");
    CHECK(formatRelative(160s, 100s) == "in 1min");
}

TEST_CASE("values at the edge of the types are refused, not wrapped") {
    using thintrim::test::Contains;
    // 2^63 us rounds to INT64_MAX as a double; it was accepted and wrapped.
    CHECK_THROWS_WITH(parseDuration("9223372036854775808us", "x"), Contains("too long"));
    CHECK_THROWS_WITH(parseDuration("15250285w", "x"), Contains("too long"));
    CHECK(parseDuration("9223372036854775000us", "x").count() > 0);
    // Above 2^63 bytes, llround() overflowed.
    CHECK(parseSize("15E", "x") == 15ULL << 60);
    CHECK_THROWS_WITH(parseSize("16E", "x"), Contains("too large"));
    CHECK_THROWS_WITH(parseSize("-1", "x"), Contains("must not be negative"));
    CHECK_THROWS_WITH(parseDuration("-5s", "x"), Contains("must not be negative"));
}

TEST_CASE("saturating arithmetic stops at the limits") {
    constexpr auto maxTime = Microseconds::max();
    CHECK(saturatingAdd(maxTime - 5us, 10us) == maxTime);
    CHECK(saturatingAdd(Microseconds::min() + 5us, -10us) == Microseconds::min());
    CHECK(saturatingAdd(5us, 10us) == 15us);
    CHECK(saturatingSubtract(Microseconds::min() + 5us, 10us) == Microseconds::min());
    CHECK(saturatingSubtract(maxTime, -1us) == maxTime);
    CHECK(saturatingSubtract(10us, 4us) == 6us);
    constexpr auto maxBytes = std::numeric_limits<std::uint64_t>::max();
    CHECK(saturatingAdd(maxBytes - 1, std::uint64_t{2}) == maxBytes);
    CHECK(saturatingAdd(std::uint64_t{1}, std::uint64_t{2}) == 3);
    CHECK(saturatingMultiply(std::uint64_t{1} << 40, std::uint64_t{1} << 40) == maxBytes);
    CHECK(saturatingMultiply(std::uint64_t{3}, std::uint64_t{4}) == 12);
}
