// SPDX-License-Identifier: GPL-2.0-or-later
#include "outcome_log.h"

#include "log.h"
#include "published_properties.h"

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

} // namespace thintrim::daemon
