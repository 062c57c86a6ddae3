// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace thintrim {

// Every failure the core reports to a user carries one of these codes. The
// D-Bus layer maps each to one error name and the CLI maps names back, so the
// set is the contract between the two (see src/dbus/ and src/cli/errors.cpp).
enum class ErrorCode {
    InvalidArgument, // bad input from the caller: a size, a path, an option
    InvalidConfig,   // configuration file problem (file, line, key, what)
    NotManaged,      // a mount point that is not a filesystem thintrim manages
    NotEligible,     // a managed filesystem whose stack cannot pass discards
    NoSuchJob,
    AccessDenied,
    System, // an operating-system call failed; the message names the call and path
};

[[nodiscard]] std::string_view errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    [[nodiscard]] ErrorCode code() const { return code_; }

private:
    ErrorCode code_;
};

// Throws Error(System) with "<what>: <strerror(err)>".
[[noreturn]] void throwSystemError(const std::string& what, int err);

} // namespace thintrim
