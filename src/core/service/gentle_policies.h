// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "config/config.h"
#include "discovery/filesystem_catalog.h"
#include "engine/engine.h"
#include "engine/trim_policies.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace thintrim {

// The daemon's gentle policies (trim_policies.h) over its catalog, in the
// order the engine asks them: storage health first (a filesystem put off is
// not paced), then trim windows, then load-aware pacing. Windows and busy
// storage hold back only the jobs the schedule queued (scheduled()).
class GentlePolicies {
public:
    // Reads the leaf disks of a mount from `catalog` as it is when asked.
    GentlePolicies(const FilesystemCatalog& catalog, SystemPaths paths);
    GentlePolicies(const GentlePolicies&) = delete;
    GentlePolicies& operator=(const GentlePolicies&) = delete;

    // The policies in the order the engine asks them.
    [[nodiscard]] std::vector<ChunkPolicy*> inOrder();
    // Adds them to `engine`, which they must outlive.
    void addTo(Engine& engine);
    // Applies [Trim] Pacing= and [Schedule] Window=.
    void configure(const Config& config);
    // The schedule queued `jobId` / a job finished.
    void scheduled(std::uint64_t jobId) { scheduledJobs_.insert(jobId); }
    void finished(std::uint64_t jobId) { scheduledJobs_.erase(jobId); }
    // Manager.PacingState (PacingPolicy::status()).
    [[nodiscard]] std::string pacingStatus() const { return pacing_.status(); }

private:
    [[nodiscard]] bool isScheduled(std::uint64_t jobId) const {
        return scheduledJobs_.contains(jobId);
    }

    const FilesystemCatalog& catalog_;
    SystemPaths paths_;
    std::set<std::uint64_t> scheduledJobs_;
    PacingPolicy pacing_;
    WindowPolicy window_;
    StorageHealthPolicy storageHealth_;
};

} // namespace thintrim
