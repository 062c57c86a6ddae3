// SPDX-License-Identifier: GPL-2.0-or-later
#include "service/gentle_policies.h"

#include "stack/storage_health.h"
#include "state/schedule.h"

namespace thintrim {

GentlePolicies::GentlePolicies(const FilesystemCatalog& catalog, SystemPaths paths)
    : catalog_(catalog), paths_(std::move(paths)),
      pacing_(
          [this](const Mount& mount) {
              const CatalogEntry* entry = catalog_.entryOf(mount);
              return entry != nullptr && entry->stack ? leafDevices(*entry->stack)
                                                      : std::vector<std::string>{};
          },
          [this](const std::vector<std::string>& disks, Microseconds now) {
              return sampleIo(paths_, disks, now);
          }),
      window_([this](std::uint64_t job) { return isScheduled(job); },
              [] { return readClocks().realtime; }),
      storageHealth_([this](std::uint64_t job) { return isScheduled(job); },
                     [this](const Mount& mount) -> std::optional<std::string> {
                         const CatalogEntry* entry = catalog_.entryOf(mount);
                         if (entry == nullptr || !entry->stack)
                             return std::nullopt;
                         return storageDeferral(paths_, *entry->stack);
                     }) {}

std::vector<ChunkPolicy*> GentlePolicies::inOrder() {
    return {&storageHealth_, &window_, &pacing_};
}

void GentlePolicies::addTo(Engine& engine) {
    for (ChunkPolicy* policy : inOrder())
        engine.addPolicy(*policy);
}

void GentlePolicies::configure(const Config& config) {
    pacing_.setMode(config.trim.pacing);
    window_.setWindows(config.schedule.window);
}

} // namespace thintrim
