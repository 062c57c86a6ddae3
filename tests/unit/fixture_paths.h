// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace thintrim::test {

// The extracted capture `name` (tests/fixtures/<name>.tar.gz, unpacked into
// the build tree by meson), as the core's roots.
inline SystemPaths fixturePaths(const std::string& name) {
    const char* base = std::getenv("THINTRIM_FIXTURES");
    if (base == nullptr)
        throw std::runtime_error("THINTRIM_FIXTURES is not set; run the tests with meson test");
    std::filesystem::path root = std::filesystem::path(base) / name;
    if (!std::filesystem::is_directory(root / "sys"))
        throw std::runtime_error("fixture not extracted: " + root.string());
    SystemPaths paths;
    paths.sysfsRoot = root;
    paths.mountinfo = root / "proc/self/mountinfo";
    paths.fstab = root / "etc/fstab"; // absent in captures: no fstab options
    paths.devRoot = root / "dev";     // absent: no libblkid probing
    return paths;
}

// The capture `name` with its sysfs copied under `into`, for a test that
// changes it (marks a disk removable, an array degraded): the extracted
// capture is shared by every test. The other roots stay the capture's.
inline SystemPaths writableFixturePaths(const std::string& name,
                                        const std::filesystem::path& into) {
    SystemPaths paths = fixturePaths(name);
    std::filesystem::copy(paths.sysfsRoot / "sys", into / "sys",
                          std::filesystem::copy_options::recursive |
                              std::filesystem::copy_options::copy_symlinks);
    paths.sysfsRoot = into;
    return paths;
}

// Files hand-written for a test (mountinfo lines for nfs, autofs...), in tests/data.
inline std::filesystem::path testData(const std::string& name) {
    const char* base = std::getenv("THINTRIM_TEST_DATA");
    if (base == nullptr)
        throw std::runtime_error("THINTRIM_TEST_DATA is not set; run the tests with meson test");
    return std::filesystem::path(base) / name;
}

} // namespace thintrim::test
