// SPDX-License-Identifier: GPL-2.0-or-later
// Shared by the libFuzzer targets: the readers under test take paths (the
// daemon injects every root), so each input is written to a file in one
// private directory, with every other system path pointing inside it too.
#pragma once

#include "base/system_paths.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace thintrim::fuzz {

inline const std::filesystem::path& workDir() {
    static const std::filesystem::path dir = [] {
        std::string pattern = (std::filesystem::temp_directory_path() / "thintrim-fuzz.XXXXXX");
        if (::mkdtemp(pattern.data()) == nullptr)
            std::abort();
        return std::filesystem::path(pattern);
    }();
    return dir;
}

inline std::filesystem::path writeInput(const std::uint8_t* data, std::size_t size,
                                        std::string_view name) {
    const std::filesystem::path path = workDir() / name;
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    return path;
}

// Every root inside the work directory: nothing of the machine is read.
inline SystemPaths privatePaths() {
    SystemPaths paths;
    paths.sysfsRoot = workDir() / "root";
    paths.devRoot = workDir() / "root";
    paths.mountinfo = workDir() / "mountinfo";
    paths.fstab = workDir() / "fstab";
    paths.swaps = workDir() / "swaps";
    paths.crypttab = workDir() / "crypttab";
    paths.lvmConfig = workDir() / "lvm.conf";
    paths.systemdConfig = workDir() / "systemd";
    return paths;
}

} // namespace thintrim::fuzz
