// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace thintrim::host::test {

// tests/host/data, from THINTRIM_HOST_TEST_DATA (set by meson).
inline std::filesystem::path dataDir() {
    const char* dir = std::getenv("THINTRIM_HOST_TEST_DATA");
    if (dir == nullptr)
        throw std::runtime_error("THINTRIM_HOST_TEST_DATA is not set");
    return dir;
}

inline std::string readData(const std::filesystem::path& relative) {
    std::ifstream file(dataDir() / relative, std::ios::binary);
    if (!file)
        throw std::runtime_error("cannot read " + (dataDir() / relative).string());
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

} // namespace thintrim::host::test
