// SPDX-License-Identifier: GPL-2.0-or-later
#include "bus_names.h"

#include <array>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

#include <systemd/sd-bus.h>

namespace thintrim::dbus {

namespace {

// The one table between codes and names, read both ways.
constexpr std::array<std::pair<ErrorCode, std::string_view>, 7> kErrorNames{{
    {ErrorCode::InvalidArgument, "org.thintrim.ThinTrim1.Error.InvalidArgument"},
    {ErrorCode::InvalidConfig, "org.thintrim.ThinTrim1.Error.InvalidConfig"},
    {ErrorCode::NotManaged, "org.thintrim.ThinTrim1.Error.NotManaged"},
    {ErrorCode::NotEligible, "org.thintrim.ThinTrim1.Error.NotEligible"},
    {ErrorCode::NoSuchJob, "org.thintrim.ThinTrim1.Error.NoSuchJob"},
    {ErrorCode::AccessDenied, "org.freedesktop.DBus.Error.AccessDenied"},
    {ErrorCode::System, "org.thintrim.ThinTrim1.Error.Failed"},
}};

} // namespace

std::string filesystemObjectPath(std::string_view mountPoint) {
    char* path = nullptr;
    const std::string label{mountPoint};
    if (sd_bus_path_encode(kFilesystemPathPrefix, label.c_str(), &path) < 0)
        throw std::bad_alloc();
    const std::unique_ptr<char, decltype(&std::free)> owned{path, &std::free};
    return path;
}

std::string errorName(ErrorCode code) {
    for (const auto& [known, name] : kErrorNames) {
        if (known == code)
            return std::string(name);
    }
    return std::string(kErrorNames.back().second);
}

std::optional<ErrorCode> errorCodeFromName(std::string_view name) {
    for (const auto& [code, known] : kErrorNames) {
        if (known == name)
            return code;
    }
    return std::nullopt;
}

} // namespace thintrim::dbus
