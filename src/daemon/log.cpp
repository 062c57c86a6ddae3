// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.h"

#include "base/error.h"

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

namespace thintrim::daemon {

namespace {

LogLevel maximumLevel = LogLevel::Info;
bool toJournal = false;

// JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected stderr to; a
// shell redirect or pipe inherited from a service has other numbers.
bool stderrIsJournal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr)
        return false;
    struct stat status {};
    if (::fstat(STDERR_FILENO, &status) != 0)
        return false;
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2)
        return false;
    return device == status.st_dev && inode == status.st_ino;
}

} // namespace

LogLevel parseLogLevel(std::string_view text) {
    // syslog's short spellings too
    const std::string_view name = text == "err" ? "error" : text == "warn" ? "warning" : text;
    if (const std::optional<LogLevel> level = kLogLevels.find(name))
        return *level;
    throw Error(ErrorCode::InvalidArgument, fmt::format("--log-level: \"{}\" is not one of {}",
                                                        text, kLogLevels.acceptedNames()));
}

void initLogging(LogLevel maximum) {
    maximumLevel = maximum;
    toJournal = stderrIsJournal();
}

void logMessage(LogLevel level, std::string_view message) {
    logEvent(level, {}, message, {});
}

void logEvent(LogLevel level, std::string_view messageId, std::string_view message,
              const std::vector<LogField>& fields) {
    if (level > maximumLevel)
        return;
    if (!toJournal) {
        fmt::print(stderr, "thintrimd: {}\n", message);
        std::fflush(stderr);
        return;
    }
    std::vector<std::string> lines;
    lines.push_back(fmt::format("MESSAGE={}", message));
    lines.push_back(fmt::format("PRIORITY={}", static_cast<int>(level)));
    lines.push_back("SYSLOG_IDENTIFIER=thintrimd");
    if (!messageId.empty())
        lines.push_back(fmt::format("MESSAGE_ID={}", messageId));
    for (const auto& [name, value] : fields)
        lines.push_back(fmt::format("{}={}", name, value));
    std::vector<iovec> vector;
    vector.reserve(lines.size());
    for (std::string& line : lines)
        vector.push_back({line.data(), line.size()});
    if (sd_journal_sendv(vector.data(), static_cast<int>(vector.size())) < 0) {
        fmt::print(stderr, "thintrimd: {}\n", message);
        std::fflush(stderr);
    }
}

} // namespace thintrim::daemon
