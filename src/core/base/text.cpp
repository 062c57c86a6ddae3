// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/text.h"

#include <fstream>

namespace thintrim {

std::optional<std::string> readSmallFile(const std::filesystem::path& path) {
    constexpr std::size_t kMaxFileBytes = 1 << 20;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::string text(kMaxFileBytes, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    return text;
}

} // namespace thintrim
