// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"

#include <stdexcept>
#include <string>
#include <string_view>

namespace thintrim {

// Every failure the core reports to a user carries one of these codes. The
// D-Bus layer sends each as one error name (src/dbus/bus_names.cpp) and the
// CLI maps the names back (errorFromBus in src/cli/remote.cpp), so the set is
// the contract between the two.
enum class ErrorCode {
    InvalidArgument, // bad input from the caller: a size, a path, an option
    InvalidConfig,   // configuration file problem (file, line, key, what)
    NotManaged,      // a mount point that is not a filesystem thintrim manages
    NotEligible,     // a managed filesystem whose stack cannot pass discards
    NoSuchJob,
    AccessDenied,
    // Not the caller's fault: an operating-system call failed (the message
    // names the call and the path), a device or the daemon did not answer.
    Failed,
};

// The codes by name: org.thintrim.ThinTrim1.Error.<name> on the bus (but
// AccessDenied, which is the bus's standard one).
inline constexpr auto kErrorCodes =
    makeEnumCodec<ErrorCode>("error code", {{ErrorCode::InvalidArgument, "InvalidArgument"},
                                            {ErrorCode::InvalidConfig, "InvalidConfig"},
                                            {ErrorCode::NotManaged, "NotManaged"},
                                            {ErrorCode::NotEligible, "NotEligible"},
                                            {ErrorCode::NoSuchJob, "NoSuchJob"},
                                            {ErrorCode::AccessDenied, "AccessDenied"},
                                            {ErrorCode::Failed, "Failed"}});
[[nodiscard]] constexpr std::string_view errorCodeName(ErrorCode code) {
    return kErrorCodes.name(code);
}

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    [[nodiscard]] ErrorCode code() const { return code_; }

private:
    ErrorCode code_;
};

// Throws Error(Failed) with "<what>: <strerror(err)>".
[[noreturn]] void throwSystemError(const std::string& what, int err);

} // namespace thintrim
