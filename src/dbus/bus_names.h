// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "error.h"

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

// The D-Bus error name for a code: org.thintrim.ThinTrim1.Error.<Code>,
// org.freedesktop.DBus.Error.AccessDenied for AccessDenied, and
// org.thintrim.ThinTrim1.Error.Failed for System.
[[nodiscard]] std::string errorName(ErrorCode code);
// The reverse; nullopt for a name thintrim does not send.
[[nodiscard]] std::optional<ErrorCode> errorCodeFromName(std::string_view name);

} // namespace thintrim::dbus
