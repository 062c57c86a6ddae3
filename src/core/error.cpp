// SPDX-License-Identifier: GPL-2.0-or-later
#include "error.h"

#include <cstring>

namespace thintrim {

std::string_view errorCodeName(ErrorCode code) {
    switch (code) {
    case ErrorCode::InvalidArgument:
        return "InvalidArgument";
    case ErrorCode::InvalidConfig:
        return "InvalidConfig";
    case ErrorCode::NotManaged:
        return "NotManaged";
    case ErrorCode::NotEligible:
        return "NotEligible";
    case ErrorCode::NoSuchJob:
        return "NoSuchJob";
    case ErrorCode::AccessDenied:
        return "AccessDenied";
    case ErrorCode::System:
        return "System";
    }
    return "System";
}

void throwSystemError(const std::string& what, int err) {
    throw Error(ErrorCode::System, what + ": " + std::strerror(err));
}

} // namespace thintrim
