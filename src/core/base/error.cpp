// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/error.h"

#include <cstring>

namespace thintrim {

void throwUnknownName(std::string_view what, std::string_view name, const std::string& accepted) {
    throw Error(ErrorCode::InvalidArgument, "unknown " + std::string(what) + " \"" +
                                                std::string(name) + "\"; known are " + accepted);
}

void throwSystemError(const std::string& what, int err) {
    throw Error(ErrorCode::Failed, what + ": " + std::strerror(err));
}

} // namespace thintrim
