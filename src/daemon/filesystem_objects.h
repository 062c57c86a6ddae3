// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "bus_objects.h"
#include "discovery/filesystem_catalog.h"

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace thintrim::daemon {

// The Filesystem objects on the bus: one per visible mount point the catalog
// manages, each added and removed with it (InterfacesAdded/Removed).
class FilesystemObjects {
public:
    using Properties = std::function<FilesystemProperties(const CatalogEntry& entry)>;

    FilesystemObjects(sdbus::IConnection& bus, Controller& controller, Authorizer& authorizer)
        : bus_(bus), controller_(controller), authorizer_(authorizer) {}

    // Adds and removes objects to match `catalog`; a new object starts with
    // `properties` of its entry.
    void sync(const FilesystemCatalog& catalog, const Properties& properties);
    // Gives every object its properties now; each emits PropertiesChanged
    // only for what differs.
    void publish(const FilesystemCatalog& catalog, const Properties& properties);
    [[nodiscard]] std::size_t size() const { return objects_.size(); }

private:
    sdbus::IConnection& bus_;
    Controller& controller_;
    Authorizer& authorizer_;
    std::map<std::string, std::unique_ptr<FilesystemObject>, std::less<>> objects_;
};

} // namespace thintrim::daemon
