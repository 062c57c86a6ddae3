// SPDX-License-Identifier: GPL-2.0-or-later
#include "filesystem_objects.h"

#include "journal.h"
#include "log.h"

#include <fmt/format.h>

namespace thintrim::daemon {

void FilesystemObjects::sync(const FilesystemCatalog& catalog, const Properties& properties) {
    const std::set<std::string_view> present = catalog.managedMountPoints();
    for (auto it = objects_.begin(); it != objects_.end();) {
        if (present.contains(it->first)) {
            ++it;
        } else {
            logMessage(LogLevel::Info, fmt::format("{} is no longer managed", it->first));
            it = objects_.erase(it); // InterfacesRemoved
        }
    }
    for (std::string_view mountPoint : present) {
        if (objects_.contains(mountPoint))
            continue;
        const CatalogEntry& entry = *catalog.visible(mountPoint);
        objects_.emplace(
            std::string(mountPoint),
            std::make_unique<FilesystemObject>(bus_, controller_, authorizer_, properties(entry)));
        logManaging(entry);
    }
}

void FilesystemObjects::publish(const FilesystemCatalog& catalog, const Properties& properties) {
    for (const auto& [mountPoint, object] : objects_) {
        if (const CatalogEntry* entry = catalog.visible(mountPoint))
            object->publish(properties(*entry));
    }
}

} // namespace thintrim::daemon
