// SPDX-License-Identifier: GPL-2.0-or-later
#include "bus_names.h"

#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

#include <systemd/sd-bus.h>

namespace thintrim::dbus {

std::string filesystemObjectPath(std::string_view mountPoint) {
    char* path = nullptr;
    const std::string label{mountPoint};
    if (sd_bus_path_encode(kFilesystemPathPrefix, label.c_str(), &path) < 0)
        throw std::bad_alloc();
    const std::unique_ptr<char, decltype(&std::free)> owned{path, &std::free};
    return path;
}

std::string errorName(ErrorCode code) {
    if (code == ErrorCode::AccessDenied)
        return std::string(kAccessDeniedName);
    return std::string(kErrorPrefix) + std::string(errorCodeName(code));
}

std::optional<ErrorCode> errorCodeFromName(std::string_view name) {
    if (name == kAccessDeniedName)
        return ErrorCode::AccessDenied;
    if (!name.starts_with(kErrorPrefix))
        return std::nullopt;
    const std::optional<ErrorCode> code = kErrorCodes.find(name.substr(kErrorPrefix.size()));
    // AccessDenied travels under the bus's standard name only.
    if (code == ErrorCode::AccessDenied)
        return std::nullopt;
    return code;
}

} // namespace thintrim::dbus
