// SPDX-License-Identifier: GPL-2.0-or-later
#include "journal.h"

#include "base/units.h"
#include "log.h"
#include "published_properties.h"
#include "state/schedule.h"

#include <fmt/format.h>

namespace thintrim::daemon {

void logFilesystemTrimmed(const FilesystemReport& filesystem) {
    const TrimReport& report = filesystem.trim;
    const std::string& mountPoint = filesystem.mountPoint;
    const std::string result{trimOutcomeName(report.outcome)};
    logEvent(
        report.outcome == TrimOutcome::Failed ? LogLevel::Warning : LogLevel::Info,
        message_id::kFilesystemTrimmed,
        report.outcome == TrimOutcome::Success && report.message.empty()
            ? fmt::format("{}: {} ({} bytes) trimmed in {}", mountPoint,
                          formatSize(report.trimmedBytes), report.trimmedBytes,
                          formatDuration(report.duration))
            : fmt::format("{}: {}: {}", mountPoint, result, report.message),
        {{"MOUNT_POINT", mountPoint},
         {"TRIMMED_BYTES", std::to_string(report.trimmedBytes)},
         {"REACHED_DISK_BYTES", report.reachedDiskBytes ? std::to_string(*report.reachedDiskBytes)
                                                        : std::string("unknown")},
         {"DURATION_USEC", std::to_string(usec(report.duration))},
         {"RESULT", result},
         {"JOB", std::to_string(filesystem.jobId)}});
}

void logFilesystemVerified(const std::string& mountPoint, const VerifyReport& report) {
    logEvent(
        report.verdict == VerifyVerdict::Dropped ? LogLevel::Warning : LogLevel::Info,
        message_id::kFilesystemVerified,
        fmt::format("{}: verify {}: {}", mountPoint, verifyVerdictName(report.verdict),
                    report.message),
        {{"MOUNT_POINT", mountPoint},
         {"VERIFY_RESULT", std::string(verifyVerdictName(report.verdict))},
         {"REACHED_DISK_BYTES", report.reachedDiskBytes ? std::to_string(*report.reachedDiskBytes)
                                                        : std::string("unknown")}});
}

void logJobFinished(const JobSummary& summary) {
    const std::string result{jobResultName(summary.result)};
    logEvent(LogLevel::Info, message_id::kJobFinished,
             fmt::format("job {} finished: {}, {} trimmed", summary.id, result,
                         formatSize(summary.trimmedBytes)),
             {{"JOB", std::to_string(summary.id)},
              {"RESULT", result},
              {"TRIMMED_BYTES", std::to_string(summary.trimmedBytes)}});
}

sd_id128_t machineSplayKey() {
    if (auto key = readMachineSplayKey())
        return *key;
    sd_id128_t key{};
    if (sd_id128_randomize(&key) < 0)
        return key;
    logMessage(LogLevel::Warning, "no usable /etc/machine-id: scheduled trims are spread at "
                                  "random instead of at a stable time per machine");
    return key;
}

State loadStateOrEmpty(const StateStore& store) {
    StateStore::Loaded loaded = store.load();
    if (loaded.warning)
        logEvent(LogLevel::Warning, message_id::kStateReset,
                 fmt::format("{}; starting with an empty history", *loaded.warning),
                 {{"STATE_FILE", store.path().string()}});
    return std::move(loaded.state);
}

void logSleep(bool goingToSleep) {
    logMessage(LogLevel::Info, goingToSleep ? "the system is going to sleep: trims pause at the "
                                              "next chunk boundary"
                                            : "the system woke up: trims continue");
}

void logSuspended(const std::optional<Engine::Current>& current) {
    logEvent(LogLevel::Notice, message_id::kSuspended,
             current ? fmt::format("suspended; {} stops at the next chunk boundary",
                                   current->mount.mountPoint)
                     : std::string("suspended"),
             {});
}

void logConfigRejected(const Error& error) {
    logEvent(
        LogLevel::Error, message_id::kConfigRejected,
        fmt::format("configuration not reloaded, the old one stays in force: {}", error.what()),
        {});
}

void logManaging(const CatalogEntry& entry) {
    logMessage(LogLevel::Info,
               fmt::format("managing {} ({} on {}): {}", entry.mount.mountPoint, entry.mount.fsType,
                           entry.mount.source,
                           entry.eligible() ? "eligible" : "not eligible: " + entry.reason()));
}

void logForgotten(const std::vector<std::string>& forgotten, Microseconds forgetAfter) {
    for (const std::string& identity : forgotten)
        logMessage(LogLevel::Info,
                   fmt::format("forgot {}: not mounted for longer than ForgetAfter={}", identity,
                               formatDuration(forgetAfter)));
}

} // namespace thintrim::daemon
