// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace thintrim::daemon {

// syslog priorities, in the journal's order.
enum class LogLevel { Error = 3, Warning = 4, Notice = 5, Info = 6, Debug = 7 };
inline constexpr auto kLogLevels =
    makeEnumCodec<LogLevel>("log level", {{LogLevel::Error, "error"},
                                          {LogLevel::Warning, "warning"},
                                          {LogLevel::Notice, "notice"},
                                          {LogLevel::Info, "info"},
                                          {LogLevel::Debug, "debug"}});

// A name of kLogLevels, or "err", "warn"; throws Error(InvalidArgument).
[[nodiscard]] LogLevel parseLogLevel(std::string_view text);

// MESSAGE_ID= of each kind of event, so that `journalctl MESSAGE_ID=...`
// finds them across versions. Fixed forever once released.
namespace message_id {
inline constexpr std::string_view kDaemonStarted = "9c65d5b10ed9400ca61d4f3bcb6c24da";
inline constexpr std::string_view kDaemonStopping = "bcffd5b217bb46fbbdadfa0eb4f033b9";
inline constexpr std::string_view kFilesystemTrimmed = "8e40d67bab744b35912c54c62842c31b";
inline constexpr std::string_view kJobFinished = "3e9d10fa20a04c9588188cc2eef37010";
inline constexpr std::string_view kConfigReloaded = "5ceb614444c1440daf4b4b1df82c07cc";
inline constexpr std::string_view kConfigRejected = "825cb342c0c44cb1807af8f431d1a9cb";
inline constexpr std::string_view kStateReset = "e8b5d431428142e28a17d208bf850617";
inline constexpr std::string_view kSuspended = "792e40f3f17b43f7903efbf75400d003";
inline constexpr std::string_view kResumed = "51fb2ae5ca894bd48461938f8c288bb4";
inline constexpr std::string_view kFilesystemVerified = "1d13a1d6742f43f48b179a7ed149cb3a";
} // namespace message_id

// A structured field beyond MESSAGE: ("MOUNT_POINT", "/home").
using LogField = std::pair<std::string_view, std::string>;

// Where messages go: the journal with structured fields when stderr is the
// journal's stream (JOURNAL_STREAM matches it, as under systemd), plain
// "thintrimd: message" lines on stderr otherwise. Decided once at startup.
void initLogging(LogLevel maximum);

void logMessage(LogLevel level, std::string_view message);
void logEvent(LogLevel level, std::string_view messageId, std::string_view message,
              const std::vector<LogField>& fields);

} // namespace thintrim::daemon
