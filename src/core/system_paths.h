// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>

namespace thintrim {

// Every file-system root the core reads, in one place, so tests and
// `--sysfs-root` / `--mountinfo` can point them at captured fixture trees.
struct SystemPaths {
    // Prefix under which `sys/` is found ("/" on a live system; the extracted
    // fixture directory in tests).
    std::filesystem::path sysfsRoot = "/";
    std::filesystem::path mountinfo = "/proc/self/mountinfo";
    std::filesystem::path fstab = "/etc/fstab";
    // Where device nodes named in mountinfo sources live, for libblkid probing.
    // A fixture test points it at an empty directory: no UUIDs, no I/O.
    std::filesystem::path devRoot = "/";

    [[nodiscard]] std::filesystem::path sys(const std::filesystem::path& relative) const {
        return sysfsRoot / "sys" / relative;
    }
};

} // namespace thintrim
