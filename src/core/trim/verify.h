// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/system_paths.h"
#include "base/units.h"
#include "discovery/inventory.h"
#include "stack/block_stack.h"
#include "stack/dm_thin.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// `thintrim verify` / Manager.Verify: proves that a discard issued by the
// filesystem takes effect below it. A probe file with a random pattern is
// written and synced, its extents mapped (FIEMAP), the file deleted and
// exactly that range trimmed (FITRIM); then the filesystem's own block device
// is read at those offsets with O_DIRECT. The pattern still there means the
// discards were dropped below what the guest can see (QEMU discard=ignore,
// Proxmox's Discard unticked); gone means they took effect.

enum class VerifyVerdict { Passes, Dropped, Inconclusive };

inline constexpr auto kVerifyVerdicts =
    makeEnumCodec<VerifyVerdict>("verify verdict", {{VerifyVerdict::Passes, "passes"},
                                                    {VerifyVerdict::Dropped, "dropped"},
                                                    {VerifyVerdict::Inconclusive, "inconclusive"}});
[[nodiscard]] constexpr std::string_view verifyVerdictName(VerifyVerdict verdict) {
    return kVerifyVerdicts.name(verdict);
}

// The probe's name in the filesystem's root. A crash leaves it behind; the
// next verify of that filesystem removes it first.
inline constexpr std::string_view kVerifyProbeName = ".thintrim-verify-probe";

struct VerifyReport {
    VerifyVerdict verdict = VerifyVerdict::Inconclusive;
    std::string message; // why, and for dropped the settings to check
    std::uint64_t probeBytes = 0;
    std::uint64_t checkedBytes = 0;   // bytes read back (whole discard granules)
    std::uint64_t unchangedBytes = 0; // of those, still holding the pattern
    std::uint64_t trimmedBytes = 0;   // what FITRIM reported for the probe's range
    // Discards the leaf devices completed meanwhile; nullopt when unreadable.
    std::optional<std::uint64_t> reachedDiskBytes;
    Microseconds duration{0};
};

// How the readback is judged, apart from the I/O so that it can be tested.
struct ProbeReadback {
    std::uint64_t checkedBytes = 0;
    std::uint64_t unchangedBytes = 0;
    std::uint64_t trimmedBytes = 0;
    std::optional<std::uint64_t> reachedDiskBytes;
    bool continuousDiscard = false; // mounted with `discard`
};
// Pattern everywhere: dropped (unless FITRIM discarded nothing: inconclusive);
// gone from at least half of the checked bytes: passes, unless no discard
// reached the leaf devices (swallowed inside the guest: dropped); otherwise
// inconclusive. Fills verdict and message.
void judgeReadback(const ProbeReadback& readback, VerifyReport& report);

// The sentence for a dropped verdict: the hypervisor settings to check.
[[nodiscard]] std::string droppedByHostSentence();

struct VerifyOptions {
    // Free space that must remain after the probe is written: the larger of
    // these.
    std::uint64_t minimumFreeAfter = 64ULL << 20;
    unsigned minimumFreePercent = 5;
    std::uint64_t probeBytes = 8ULL << 20; // grown to whole discard granules
};

// Runs the probe on one managed mount with its block stack (nullptr: not on
// a block device). Never throws: every outcome is in the report. Needs root
// (FITRIM, reading the block device).
[[nodiscard]] VerifyReport verifyFilesystem(const SystemPaths& paths, const Mount& mount,
                                            const BlockStack* stack, const DmReader& dmReader,
                                            const VerifyOptions& options = {});

} // namespace thintrim
