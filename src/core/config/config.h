// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/units.h"
#include "config/window.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// The daemon's configuration: one struct per INI section, every member
// initialised to the documented default, so `Config{}` is what a machine
// without any configuration file runs with.

// RandomizedDelay=infinity: slots spread over the whole Interval.
inline constexpr Microseconds kWholeInterval = Microseconds::max();

// TrimBefore=05:30: a time of day (local) by which freed space should be
// trimmed, e.g. before a nightly backup reads the disk image.
struct DailyDeadline {
    int minute = 0; // after local midnight, 0..1439

    bool operator==(const DailyDeadline&) const = default;
};

struct ScheduleConfig {
    Microseconds interval = std::chrono::weeks(1); // never 0: loading rejects it
    // How far into each Interval period slots spread (schedule.h); capped by
    // the Interval.
    Microseconds randomizedDelay = kWholeInterval;
    Microseconds bootDelay = std::chrono::minutes(5);
    // Zero bytes turns early trims off; a Percent is of the filesystem's size.
    // Small and CheckInterval short, so that freed space is back on the host
    // within seconds to minutes (thintrim.conf(5), FRESHNESS).
    SizeOrPercent freedSpaceThreshold = std::uint64_t{64} << 20;
    Microseconds checkInterval = std::chrono::seconds(10); // never 0: loading rejects it
    // Early (freed-space) trims wait at least this long after the last
    // completed trim of any kind (and kEarlyTrimDutyFactor x its duration).
    Microseconds earlyTrimSpacing = std::chrono::minutes(1);
    // Scheduled trims start and run only inside these; empty = always.
    std::vector<TimeWindow> window;
    // Every filesystem with space freed since its last trim is trimmed before
    // each of these (schedule.h, "Deadline"); empty = none.
    std::vector<DailyDeadline> trimBefore;
    // How long before a deadline its trims start, plus twice each
    // filesystem's last trim duration.
    Microseconds trimBeforeLead = std::chrono::minutes(30);
    // A filesystem not mounted for this long is forgotten (its history, its
    // line in the metrics file). 0: four times Interval.
    Microseconds forgetAfter{0};

    // forgetAfter, or four times the interval (saturating) when it is 0.
    [[nodiscard]] Microseconds effectiveForgetAfter() const;

    bool operator==(const ScheduleConfig&) const = default;
};

// Pacing=auto: between chunks, back off on I/O pressure and disk latency
// (pacing.h). fixed: ChunkSize and RateLimit only.
enum class PacingMode { Auto, Fixed };
// Pacing='s values.
inline constexpr auto kPacingModes = makeEnumCodec<PacingMode>(
    "pacing mode", {{PacingMode::Auto, "auto"}, {PacingMode::Fixed, "fixed"}});

struct TrimConfig {
    std::uint64_t minimumExtent = 0;
    std::uint64_t chunkSize = std::uint64_t{1} << 30;
    std::uint64_t rateLimit = 0; // bytes per second; 0 = unlimited
    PacingMode pacing = PacingMode::Auto;

    bool operator==(const TrimConfig&) const = default;
};

struct FilesystemsConfig {
    std::vector<std::string> include; // fnmatch() globs of mount points; empty = all
    std::vector<std::string> exclude; // fnmatch() globs of mount points
    std::vector<std::string> types;   // exact filesystem type names; empty = all
    // Also manage removable devices and what users mounted (udisks under
    // /media and /run/media); InventoryOptions::userMedia.
    bool userMedia = false;

    // Whether these rules let thintrim manage this mount. Globs use
    // fnmatch() without FNM_PATHNAME, so "/srv/*" also covers "/srv/a/b":
    // excluding a tree is the common wish and needs no "**".
    [[nodiscard]] bool selects(std::string_view mountPoint, std::string_view fsType) const;

    bool operator==(const FilesystemsConfig&) const = default;
};

struct MetricsConfig {
    std::filesystem::path metricsFile; // absolute; empty = no metrics

    bool operator==(const MetricsConfig&) const = default;
};

struct Config {
    ScheduleConfig schedule;
    TrimConfig trim;
    FilesystemsConfig filesystems;
    MetricsConfig metrics;

    bool operator==(const Config&) const = default;
};

// Where the configuration is read from. Every path is injectable so tests and
// `--config` never touch /etc.
struct ConfigPaths {
    std::filesystem::path vendorFile = "/usr/lib/thintrim/thintrim.conf"; // empty = none
    std::filesystem::path mainFile = "/etc/thintrim/thintrim.conf";
    std::filesystem::path dropInDir = "/etc/thintrim/thintrim.conf.d"; // *.conf inside
    // A file named on the command line must exist: a typo in `--config` should
    // not silently run the defaults.
    bool mainFileRequired = false;

    // `--config PATH`: that file (required), drop-ins from "PATH.d/", no vendor file.
    [[nodiscard]] static ConfigPaths explicitFile(const std::filesystem::path& file);
    // Where the installed programs look: the vendor file, the main file and
    // its drop-ins under the configured directories.
    [[nodiscard]] static ConfigPaths installed();
};

// The files loadConfig() reads, in order: vendor file, main file, then the
// drop-ins' "*.conf" in lexical order of their names. Missing ones are left
// out. Throws Error(InvalidConfig) when a required file is missing or a
// directory cannot be listed.
[[nodiscard]] std::vector<std::filesystem::path> configFiles(const ConfigPaths& paths);

// Reads every file of configFiles() over the defaults; a later assignment of a
// key replaces an earlier one (lists included), and an empty value resets the
// key to its default. Throws Error(InvalidConfig) for the first problem, with
// a message naming the file, the line, the key and what is wrong.
[[nodiscard]] Config loadConfig(const ConfigPaths& paths);

// Applies one file's text over `base`. `origin` names it in error messages
// (a path, or "<test>").
[[nodiscard]] Config parseConfig(std::string_view text, std::string_view origin,
                                 const Config& base = {});

// The configuration as an INI text that parseConfig() reads back to an equal
// Config: every key, with exact units, for `thintrim reload` and debugging.
[[nodiscard]] std::string formatConfig(const Config& config);

} // namespace thintrim
