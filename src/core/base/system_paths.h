// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
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
    // Load-aware pacing (pacing.h): I/O pressure (PSI) and the disks' counters.
    std::filesystem::path ioPressure = "/proc/pressure/io";
    std::filesystem::path diskstats = "/proc/diskstats";
    // Read by the doctor's checks only (diagnose.h).
    std::filesystem::path swaps = "/proc/swaps";
    std::filesystem::path crypttab = "/etc/crypttab";
    std::filesystem::path lvmConfig = "/etc/lvm/lvm.conf";
    // Where `systemctl enable` puts its symlinks.
    std::filesystem::path systemdConfig = "/etc/systemd/system";
    // Where device nodes named in mountinfo sources live, for libblkid probing.
    // A fixture test points it at an empty directory: no UUIDs, no I/O.
    std::filesystem::path devRoot = "/";

    [[nodiscard]] std::filesystem::path sys(const std::filesystem::path& relative) const {
        return sysfsRoot / "sys" / relative;
    }
};

// The roots both programs let tests point elsewhere, as options of the
// "Testing" group: `--sysfs-root DIR`, `--mountinfo FILE`, ...
struct SystemPathOption {
    const char* flag;
    std::filesystem::path SystemPaths::*member;
    const char* help;
};
inline constexpr std::array<SystemPathOption, 8> kSystemPathOptions{{
    {"--sysfs-root", &SystemPaths::sysfsRoot, "Read sysfs under DIR/sys"},
    {"--mountinfo", &SystemPaths::mountinfo, "Read mounts from FILE instead of the kernel's"},
    {"--fstab", &SystemPaths::fstab, "Read fstab from FILE"},
    {"--dev-root", &SystemPaths::devRoot, "Look up device nodes under DIR (DIR/dev/...)"},
    {"--swaps", &SystemPaths::swaps, "Read active swaps from FILE (doctor)"},
    {"--crypttab", &SystemPaths::crypttab, "Read crypttab from FILE (doctor)"},
    {"--lvm-conf", &SystemPaths::lvmConfig, "Read LVM's configuration from FILE (doctor)"},
    {"--systemd-config", &SystemPaths::systemdConfig,
     "Look for enabled units under DIR (doctor; default /etc/systemd/system)"},
}};

} // namespace thintrim
