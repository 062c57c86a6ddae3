// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

// What the daemon and the CLI must agree on beyond the generated interfaces:
// where things live on the bus, and how errors travel.
namespace thintrim::dbus {

inline constexpr const char* kBusName = "org.thintrim.ThinTrim1";
inline constexpr const char* kManagerPath = "/org/thintrim/ThinTrim1";
inline constexpr const char* kFilesystemPathPrefix = "/org/thintrim/ThinTrim1/filesystem";
inline constexpr const char* kPolkitAction = "org.thintrim.ThinTrim1.manage";
// A size property whose value could not be measured (receipts when the
// disks' counters are unreadable): 2^64-1, documented in the XML.
inline constexpr std::uint64_t kUnknownBytes = std::numeric_limits<std::uint64_t>::max();

// /org/thintrim/ThinTrim1/filesystem/<mount point escaped by sd_bus_path_encode>.
[[nodiscard]] std::string filesystemObjectPath(std::string_view mountPoint);

inline constexpr std::string_view kErrorPrefix = "org.thintrim.ThinTrim1.Error.";
inline constexpr std::string_view kAccessDeniedName = "org.freedesktop.DBus.Error.AccessDenied";

// The D-Bus error name for a code: kErrorPrefix and the code's name
// (errorCodeName), but kAccessDeniedName for AccessDenied.
[[nodiscard]] std::string errorName(ErrorCode code);
// The reverse; nullopt for a name thintrim does not send.
[[nodiscard]] std::optional<ErrorCode> errorCodeFromName(std::string_view name);

} // namespace thintrim::dbus
