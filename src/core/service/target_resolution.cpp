// SPDX-License-Identifier: GPL-2.0-or-later
#include "service/target_resolution.h"

#include "base/error.h"

#include <algorithm>

#include <fmt/format.h>

namespace thintrim {

std::vector<std::string> trimTargets(const FilesystemCatalog& catalog,
                                     const std::vector<std::string>& mountPoints) {
    std::vector<std::string> targets;
    if (mountPoints.empty()) {
        for (const CatalogEntry* entry : catalog.trimmableEntries())
            targets.push_back(entry->mount.mountPoint);
    }
    for (const std::string& mountPoint : mountPoints) {
        const CatalogEntry* entry = catalog.find(mountPoint);
        if (entry == nullptr)
            throw Error(ErrorCode::NotManaged, fmt::format("{} is not a mount point", mountPoint));
        if (!entry->mount.isManaged())
            throw Error(ErrorCode::NotManaged, fmt::format("{} is not trimmed by thintrim: {}",
                                                           mountPoint, entry->reason()));
        if (!catalog.isManagedHere(*entry))
            throw Error(ErrorCode::NotManaged,
                        fmt::format("{} is left out by the [Filesystems] section of the "
                                    "configuration",
                                    mountPoint));
        if (!entry->eligible())
            throw Error(ErrorCode::NotEligible,
                        fmt::format("{} cannot pass discards: {}", mountPoint, entry->reason()));
        if (std::find(targets.begin(), targets.end(), entry->mount.mountPoint) == targets.end())
            targets.push_back(entry->mount.mountPoint);
    }
    return targets;
}

std::vector<const CatalogEntry*> verifyTargets(const FilesystemCatalog& catalog,
                                               const std::vector<std::string>& mountPoints) {
    if (mountPoints.empty())
        return catalog.trimmableEntries();
    std::vector<const CatalogEntry*> targets;
    for (const std::string& mountPoint : mountPoints)
        targets.push_back(&requireManaged(catalog, mountPoint));
    return targets;
}

const CatalogEntry& requireManaged(const FilesystemCatalog& catalog, std::string_view mountPoint) {
    const CatalogEntry* entry = catalog.managed(mountPoint);
    if (entry == nullptr)
        throw Error(ErrorCode::NotManaged,
                    fmt::format("{} is not a filesystem thintrim manages", mountPoint));
    return *entry;
}

Resolution resolveForTrim(const FilesystemCatalog& catalog, const std::string& mountPoint) {
    const CatalogEntry* entry = catalog.managed(mountPoint);
    if (entry == nullptr)
        return {std::nullopt, fmt::format("{} is not mounted any more", mountPoint)};
    if (!entry->eligible())
        return {std::nullopt, "cannot pass discards: " + entry->reason()};
    return {entry->mount, {}};
}

} // namespace thintrim
