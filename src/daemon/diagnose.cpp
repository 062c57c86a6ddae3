// SPDX-License-Identifier: GPL-2.0-or-later
#include "diagnose.h"

#include <array>

#include <fmt/format.h>

namespace thintrim::daemon {

namespace {

// Every managed filesystem: does its block stack pass discards? The verdict's
// reason names the layer at fault and the fix.
void checkBlockStacks(const DiagnoseInput& input, std::vector<Finding>& findings) {
    for (const CatalogEntry& entry : input.catalog) {
        if (!entry.mount.isManaged())
            continue;
        if (entry.eligible())
            findings.push_back({"ok", entry.mount.mountPoint, entry.reason(), ""});
        else
            findings.push_back({"error", entry.mount.mountPoint,
                                fmt::format("discards do not reach the disk: {}", entry.reason()),
                                "fix the layer named above; `thintrim stack " +
                                    entry.mount.mountPoint + "` shows every layer"});
    }
}

// Network filesystems cannot pass discards at all; say so once per mount.
void checkNetworkFilesystems(const DiagnoseInput& input, std::vector<Finding>& findings) {
    for (const CatalogEntry& entry : input.catalog) {
        if (entry.mount.skipReason == SkipReason::Network)
            findings.push_back({"info", entry.mount.mountPoint,
                                fmt::format("{} is a network filesystem ({}): it cannot pass "
                                            "discards; trim on the server instead",
                                            entry.mount.mountPoint, entry.mount.fsType),
                                ""});
    }
}

constexpr std::array<DiagnoseCheck, 2> kChecks{checkBlockStacks, checkNetworkFilesystems};

} // namespace

std::vector<Finding> runDiagnosis(const DiagnoseInput& input) {
    std::vector<Finding> findings;
    for (DiagnoseCheck check : kChecks)
        check(input, findings);
    return findings;
}

} // namespace thintrim::daemon
