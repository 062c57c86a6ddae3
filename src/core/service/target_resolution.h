// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "discovery/filesystem_catalog.h"
#include "engine/engine.h"

#include <string>
#include <string_view>
#include <vector>

namespace thintrim {

// Which filesystems a caller's mount points mean, against the daemon's
// catalog. Every refusal is an Error naming the mount point and why.

// The mount points a Trim call asks for: every trimmable filesystem when
// `mountPoints` is empty, else each named one (as the catalog spells it,
// each once). Resolves everything first: one bad mount point throws
// Error(NotManaged) or Error(NotEligible) and nothing is queued.
[[nodiscard]] std::vector<std::string> trimTargets(const FilesystemCatalog& catalog,
                                                   const std::vector<std::string>& mountPoints);

// The filesystems a Verify call asks for: every trimmable filesystem when
// `mountPoints` is empty, else each named one managed here (eligible or not:
// a verify says why discards do not get through). Throws Error(NotManaged).
[[nodiscard]] std::vector<const CatalogEntry*>
verifyTargets(const FilesystemCatalog& catalog, const std::vector<std::string>& mountPoints);

// The managed filesystem `mountPoint` means; throws Error(NotManaged).
[[nodiscard]] const CatalogEntry& requireManaged(const FilesystemCatalog& catalog,
                                                 std::string_view mountPoint);

// What the engine trims when a queued job reaches `mountPoint`: the mount
// there now, or why it cannot be trimmed any more.
[[nodiscard]] Resolution resolveForTrim(const FilesystemCatalog& catalog,
                                        const std::string& mountPoint);

} // namespace thintrim
