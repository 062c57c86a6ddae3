// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim/pacing.h"

#include "base/text.h"

#include <algorithm>

#include <fmt/format.h>

namespace thintrim {

namespace {

// Fewer foreground I/Os than this in an interval say nothing about latency.
constexpr std::uint64_t kMinIosForLatency = 8;
// How fast the usual latency and the quiet pressure follow new readings.
constexpr double kUsualLatencyWeight = 0.3;
// A counter difference; nullopt when it went backwards or either is unknown.
std::optional<std::uint64_t> delta(const std::optional<std::uint64_t>& from,
                                   const std::optional<std::uint64_t>& to) {
    if (!from || !to || *to < *from)
        return std::nullopt;
    return *to - *from;
}

} // namespace

IoInterval ioBetween(const IoSample& from, const IoSample& to) {
    IoInterval interval;
    const Microseconds elapsed = to.at - from.at;
    if (auto stall = delta(from.pressureStallUs, to.pressureStallUs); stall && elapsed.count() > 0)
        interval.pressurePercent = std::clamp(
            100.0 * static_cast<double>(*stall) / static_cast<double>(elapsed.count()), 0.0, 100.0);
    auto ios = delta(from.ios, to.ios);
    auto ioMs = delta(from.ioMs, to.ioMs);
    if (ios && ioMs && *ios >= kMinIosForLatency)
        interval.latencyMs = static_cast<double>(*ioMs) / static_cast<double>(*ios);
    return interval;
}

std::optional<std::uint64_t> parsePressureTotal(std::string_view text) {
    std::optional<std::uint64_t> total;
    forEachLine(text, [&](std::string_view line) {
        const std::vector<std::string_view> words = splitFields(line);
        if (words.empty() || words[0] != "some")
            return;
        for (std::string_view word : words) {
            if (word.starts_with("total="))
                total = parseDecimal(word.substr(6));
        }
    });
    return total;
}

DiskCounters sumDiskCounters(const Diskstats& diskstats, const std::vector<std::string>& devices) {
    DiskCounters counters;
    for (const std::string& device : devices) {
        const auto row = diskstats.find(device);
        if (row == diskstats.end())
            continue;
        counters.ios += row->second.reads + row->second.writes;
        counters.ioMs += row->second.readMs + row->second.writeMs;
        ++counters.devices;
    }
    return counters;
}

IoSample sampleIo(const SystemPaths& paths, const std::vector<std::string>& leafDisks,
                  Microseconds now) {
    IoSample sample;
    sample.at = now;
    if (auto text = readSmallFile(paths.ioPressure))
        sample.pressureStallUs = parsePressureTotal(*text);
    if (auto diskstats = readDiskstats(paths.diskstats)) {
        const DiskCounters counters = sumDiskCounters(*diskstats, leafDisks);
        if (counters.devices > 0) {
            sample.ios = counters.ios;
            sample.ioMs = counters.ioMs;
        }
    }
    return sample;
}

PacingController::PacingController(PacingLimits limits) : limits_(limits) {
    if (limits_.maxChunk != 0)
        limits_.floorChunk = std::min(limits_.floorChunk, limits_.maxChunk);
    // Slow start: the first chunk is the smallest; quiet storage grows it.
    chunk_ = limits_.maxChunk == 0 ? 0 : limits_.floorChunk;
}

PacingController::Decision PacingController::afterChunk(const IoInterval& duringChunk,
                                                        const IoInterval& probe) {
    if (probe.latencyMs)
        usualLatencyMs_ = usualLatencyMs_ ? (1 - kUsualLatencyWeight) * *usualLatencyMs_ +
                                                kUsualLatencyWeight * *probe.latencyMs
                                          : *probe.latencyMs;

    std::string reason;
    const double quietPressure = quietPressurePercent_.value_or(0.0);
    if (probe.pressurePercent &&
        *probe.pressurePercent >= quietPressure + limits_.pressureLimitPercent) {
        reason = quietPressurePercent_
                     ? fmt::format("I/O pressure {:.0f} % ({:.0f} % while waiting)",
                                   *probe.pressurePercent, quietPressure)
                     : fmt::format("I/O pressure {:.0f} %", *probe.pressurePercent);
    } else if (duringChunk.latencyMs) {
        const double limit = usualLatencyMs_ ? std::max(*usualLatencyMs_ * limits_.latencyFactor,
                                                        *usualLatencyMs_ + limits_.latencyMarginMs)
                                             : limits_.absoluteLatencyLimitMs;
        if (*duringChunk.latencyMs > limit)
            reason = usualLatencyMs_
                         ? fmt::format("disk latency {:.1f} ms (usually {:.1f} ms)",
                                       *duringChunk.latencyMs, *usualLatencyMs_)
                         : fmt::format("disk latency {:.1f} ms", *duringChunk.latencyMs);
    }

    if (!reason.empty()) {
        // Multiplicative decrease, and a wait that doubles up to its cap.
        if (chunk_ != 0)
            chunk_ = std::max(limits_.floorChunk, chunk_ / 2);
        wait_ = std::min(limits_.maxWait, std::max(limits_.firstWait, wait_ * 2));
    } else {
        // Additive increase.
        if (chunk_ != 0) {
            const std::uint64_t step = std::max(limits_.floorChunk, limits_.maxChunk / 8);
            chunk_ = limits_.maxChunk - chunk_ <= step ? limits_.maxChunk : chunk_ + step;
        }
        wait_ = Microseconds{0};
    }
    return {wait_, chunk_, std::move(reason)};
}

void PacingController::afterWait(const IoInterval& waited) {
    if (waited.pressurePercent)
        quietPressurePercent_ = quietPressurePercent_
                                    ? (1 - kUsualLatencyWeight) * *quietPressurePercent_ +
                                          kUsualLatencyWeight * *waited.pressurePercent
                                    : *waited.pressurePercent;
}

} // namespace thintrim
