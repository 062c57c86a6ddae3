// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/enum_codec.h"
#include "base/system_paths.h"
#include "discovery/catalog.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

enum class Severity { Ok, Info, Warning, Error };

// The spec's names.
inline constexpr auto kSeverities =
    makeEnumCodec<Severity>("severity", {{Severity::Ok, "ok"},
                                         {Severity::Info, "info"},
                                         {Severity::Warning, "warning"},
                                         {Severity::Error, "error"}});
[[nodiscard]] constexpr std::string_view severityName(Severity severity) {
    return kSeverities.name(severity);
}

// One result of `thintrim doctor` / Manager.Diagnose.
struct Finding {
    Severity severity = Severity::Ok;
    std::string subject; // a mount point, a swap device, "/etc/crypttab", "fstrim.timer"
    std::string message; // what was found, as a sentence
    std::string hint;    // the concrete fix; empty when there is nothing to do
};

// Whole-system checks of the discard chain, in this order:
//   - every managed filesystem: does its block stack pass discards (error
//     naming the layer and its fix when not);
//   - thin pools in those stacks that do not pass discards down (error
//     naming the pool and `lvchange --discards passdown VG/POOL`);
//   - filesystems mounted with continuous `discard` (info; btrfs
//     discard=async with its backlog);
//   - network filesystems (info: they cannot pass discards);
//   - active swap partitions on discard-capable devices without the
//     `discard` option in fstab (warning);
//   - crypttab entries without `discard` (warning: dm-crypt drops discards
//     after the next boot);
//   - lvm.conf `issue_discards = 0` while LVM is in use (info: lvremove and
//     lvreduce leave the space allocated on the virtual disk);
//   - fstrim.timer enabled (warning: the same work twice).
// Each check that found nothing wrong says so with one "ok" finding. Files
// are read from `paths`; a missing file is not a finding, an unreadable one
// is (warning).
[[nodiscard]] std::vector<Finding> runDiagnosis(const SystemPaths& paths,
                                                const std::vector<CatalogEntry>& catalog);

struct State;

// The checks that need the history the daemon keeps (`state`; nullptr when
// there is none at hand), per eligible managed filesystem: the last trim's
// FITRIM bytes with no receipt at the disks (warning: swallowed inside the
// guest); the verify verdict on record (dropped: error, passes: ok,
// inconclusive: info), or a suggestion to run `thintrim verify` (one for
// the whole system when there is no history at hand).
[[nodiscard]] std::vector<Finding> proofFindings(const std::vector<CatalogEntry>& catalog,
                                                 const State* state);

} // namespace thintrim
