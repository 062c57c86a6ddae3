// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/units.h"

#include "base/error.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include <fmt/format.h>

namespace thintrim {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

[[noreturn]] void invalid(std::string_view what, std::string_view text, std::string_view accepted) {
    throw Error(ErrorCode::InvalidArgument,
                fmt::format("{}: invalid value \"{}\" ({})", what, text, accepted));
}

// Splits "1.5G" into 1.5 and "G"; the number must be non-negative and finite.
std::pair<double, std::string_view> splitNumber(std::string_view text, std::string_view what,
                                                std::string_view accepted) {
    if (text.starts_with('-'))
        invalid(what, text, "must not be negative");
    std::size_t end = 0;
    while (end < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
        ++end;
    if (end == 0)
        invalid(what, text, accepted);
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
    if (ec != std::errc() || ptr != text.data() + end || !std::isfinite(value))
        invalid(what, text, accepted);
    return {value, trim(text.substr(end))};
}

constexpr std::string_view kSizeAccepted = "a size such as 4096, 512K, 64M, 1G or 2T";

std::uint64_t parseSizeImpl(std::string_view text, std::string_view what,
                            std::string_view accepted) {
    auto [value, suffix] = splitNumber(text, what, accepted);
    static constexpr std::array<std::pair<char, int>, 6> kShifts{
        {{'K', 10}, {'M', 20}, {'G', 30}, {'T', 40}, {'P', 50}, {'E', 60}}};
    int shift = 0;
    if (!suffix.empty()) {
        char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix.front())));
        bool known = false;
        for (auto [letter, bits] : kShifts) {
            if (letter == unit) {
                shift = bits;
                known = true;
            }
        }
        if (known)
            suffix.remove_prefix(1);
        if (suffix == "iB" || suffix == "ib")
            suffix = {};
        if (suffix == "B" || suffix == "b")
            suffix = {};
        if (!suffix.empty() || (!known && unit != 'B'))
            invalid(what, text, accepted);
    }
    double bytes = std::ldexp(value, shift);
    if (bytes >= std::ldexp(1.0, 64))
        invalid(what, text, "too large");
    return static_cast<std::uint64_t>(std::round(bytes)); // llround() stops at 2^63
}

} // namespace

std::uint64_t parseSize(std::string_view text, std::string_view what) {
    return parseSizeImpl(trim(text), what, kSizeAccepted);
}

SizeOrPercent parseSizeOrPercent(std::string_view text, std::string_view what) {
    constexpr std::string_view accepted = "a size such as 8G, or a percentage such as 10%";
    text = trim(text);
    if (!text.empty() && text.back() == '%') {
        auto [value, rest] = splitNumber(text.substr(0, text.size() - 1), what, accepted);
        if (!rest.empty() || value <= 0 || value > 100)
            invalid(what, text, "a percentage must be above 0% and at most 100%");
        return Percent{value};
    }
    return parseSizeImpl(text, what, accepted);
}

std::uint64_t parseRate(std::string_view text, std::string_view what) {
    text = trim(text);
    if (text.ends_with("/s"))
        text.remove_suffix(2);
    return parseSizeImpl(trim(text), what, "a rate such as 100M/s, 1G/s, or 0 for unlimited");
}

Microseconds parseDuration(std::string_view text, std::string_view what) {
    constexpr std::string_view accepted =
        "a duration such as 90s, 5min, 1h30min, 2d or 1w; units us, ms, s, min, h, d, w";
    static constexpr std::array<std::pair<std::string_view, double>, 17> kUnits{{
        {"us", 1.0},
        {"usec", 1.0},
        {"ms", 1e3},
        {"msec", 1e3},
        {"s", 1e6},
        {"sec", 1e6},
        {"second", 1e6},
        {"seconds", 1e6},
        {"m", 60e6},
        {"min", 60e6},
        {"minutes", 60e6},
        {"h", 3600e6},
        {"hour", 3600e6},
        {"hours", 3600e6},
        {"d", 86400e6},
        {"days", 86400e6},
        {"w", 604800e6},
    }};
    std::string_view rest = trim(text);
    if (rest.empty())
        invalid(what, text, accepted);
    double total = 0;
    bool first = true;
    while (!rest.empty()) {
        auto [value, tail] = splitNumber(rest, what, accepted);
        std::size_t unitLength = 0;
        while (unitLength < tail.size() &&
               std::isalpha(static_cast<unsigned char>(tail[unitLength])))
            ++unitLength;
        std::string_view unit = tail.substr(0, unitLength);
        double scale = 0;
        if (unit.empty() && first)
            scale = 1e6; // a bare number alone means seconds
        for (auto [name, factor] : kUnits) {
            if (name == unit)
                scale = factor;
        }
        if (scale == 0)
            invalid(what, text, accepted);
        total += value * scale;
        rest = trim(tail.substr(unitLength));
        if (unit.empty() && !rest.empty())
            invalid(what, text, accepted);
        first = false;
    }
    // 2^63 itself rounds to INT64_MAX as a double: compare against the
    // power of two, which is exact, so that llround() never overflows.
    if (!(total < std::ldexp(1.0, 63)))
        invalid(what, text, "too long");
    return Microseconds(static_cast<std::int64_t>(std::llround(total)));
}

std::string formatSize(std::uint64_t bytes) {
    static constexpr std::array<std::string_view, 7> kNames{"B",   "KiB", "MiB", "GiB",
                                                            "TiB", "PiB", "EiB"};
    if (bytes < 1024)
        return fmt::format("{} B", bytes);
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < kNames.size()) {
        value /= 1024;
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, kNames[unit]);
}

std::string formatDuration(Microseconds duration) {
    using namespace std::chrono;
    auto us = duration.count();
    if (us < 0)
        us = 0;
    if (us < 1000)
        return fmt::format("{}us", us);
    if (us < 1000000)
        return fmt::format("{}ms", us / 1000);
    if (us < 60'000'000)
        return fmt::format("{:.1f}s", static_cast<double>(us) / 1e6);
    static constexpr std::array<std::pair<std::string_view, std::int64_t>, 5> kParts{{
        {"w", 604800},
        {"d", 86400},
        {"h", 3600},
        {"min", 60},
        {"s", 1},
    }};
    std::int64_t seconds = us / 1000000;
    std::string out;
    int shown = 0;
    for (auto [name, length] : kParts) {
        if (seconds >= length && shown < 2) {
            if (!out.empty())
                out += ' ';
            out += fmt::format("{}{}", seconds / length, name);
            seconds %= length;
            ++shown;
        } else if (shown > 0) {
            // Two adjacent units are enough for a person; stop at the first gap.
            shown = 2;
        }
    }
    return out;
}

std::string formatRelative(Microseconds when, Microseconds now) {
    if (when.count() == 0)
        return "never";
    if (when <= now) {
        auto ago = now - when;
        if (ago < std::chrono::seconds(1))
            return "just now";
        return formatDuration(ago) + " ago";
    }
    return "in " + formatDuration(when - now);
}

Microseconds realtimeNow() {
    return std::chrono::duration_cast<Microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
}

Microseconds saturatingAdd(Microseconds a, Microseconds b) {
    Microseconds::rep sum = 0;
    if (__builtin_add_overflow(a.count(), b.count(), &sum))
        return b.count() > 0 ? Microseconds::max() : Microseconds::min();
    return Microseconds(sum);
}

Microseconds saturatingSubtract(Microseconds a, Microseconds b) {
    Microseconds::rep difference = 0;
    if (__builtin_sub_overflow(a.count(), b.count(), &difference))
        return b.count() < 0 ? Microseconds::max() : Microseconds::min();
    return Microseconds(difference);
}

std::uint64_t saturatingAdd(std::uint64_t a, std::uint64_t b) {
    std::uint64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum))
        return std::numeric_limits<std::uint64_t>::max();
    return sum;
}

std::uint64_t saturatingMultiply(std::uint64_t a, std::uint64_t b) {
    std::uint64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product))
        return std::numeric_limits<std::uint64_t>::max();
    return product;
}

} // namespace thintrim
