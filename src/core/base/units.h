// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace thintrim {

using Microseconds = std::chrono::microseconds;

// A size given either in bytes or as a share of something (FreedSpaceThreshold=10%).
struct Percent {
    double value; // 0..100
    bool operator==(const Percent&) const = default;
};
using SizeOrPercent = std::variant<std::uint64_t, Percent>;

// All parsers throw Error(InvalidArgument) with a message that quotes the text
// and says what is accepted. `what` names the thing being parsed ("--chunk").

// "4096", "512K", "1.5G", "2T" (powers of 1024; optional trailing "B"/"iB").
[[nodiscard]] std::uint64_t parseSize(std::string_view text, std::string_view what);
// parseSize, or "10%" (0 < p <= 100).
[[nodiscard]] SizeOrPercent parseSizeOrPercent(std::string_view text, std::string_view what);
// A rate in bytes per second: a size, optionally followed by "/s".
[[nodiscard]] std::uint64_t parseRate(std::string_view text, std::string_view what);
// systemd-style: "90", "90s", "5min", "1h30min", "1w", "250ms", "10us".
// A bare number means seconds.
[[nodiscard]] Microseconds parseDuration(std::string_view text, std::string_view what);

// "1.5 GiB", "512 B".
[[nodiscard]] std::string formatSize(std::uint64_t bytes);
// "1w 2d", "5min 3s", "250ms".
[[nodiscard]] std::string formatDuration(Microseconds duration);
// "3min ago", "in 2d 4h", "never" for a zero timestamp; `now` injected for tests.
[[nodiscard]] std::string formatRelative(Microseconds when, Microseconds now);

[[nodiscard]] Microseconds realtimeNow();

// Arithmetic on times and sizes that came from files, callers or the kernel:
// clamped at the type's limits instead of wrapping (or, for the signed
// Microseconds, undefined behaviour). "Never" stays far in the future.
[[nodiscard]] Microseconds saturatingAdd(Microseconds a, Microseconds b);
[[nodiscard]] Microseconds saturatingSubtract(Microseconds a, Microseconds b);
[[nodiscard]] std::uint64_t saturatingAdd(std::uint64_t a, std::uint64_t b);
[[nodiscard]] std::uint64_t saturatingMultiply(std::uint64_t a, std::uint64_t b);

} // namespace thintrim
