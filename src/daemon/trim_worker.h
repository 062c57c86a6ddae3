// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/unique_fd.h"
#include "engine/engine.h"
#include "posted_worker.h"

#include <optional>
#include <variant>
#include <vector>

namespace thintrim::daemon {

struct PreparedEvent {
    PrepareResult result;
};

struct ChunkDoneEvent {
    ChunkResult result;
};

using WorkerEvent = std::variant<PreparedEvent, ChunkDoneEvent>;

// The engine's FITRIM on the one thread that issues it, so that a slow device
// never stalls the bus. The loop thread hands it one request at a time (the
// engine never has two outstanding); the worker answers through a queue and
// an eventfd the loop polls (PostedWorker).
class TrimWorker final : public TrimPort {
public:
    TrimWorker();
    TrimWorker(const TrimWorker&) = delete;
    TrimWorker& operator=(const TrimWorker&) = delete;

    // Readable when events are waiting; poll it, then takeEvents().
    [[nodiscard]] int eventFd() const { return worker_.eventFd(); }
    [[nodiscard]] std::vector<WorkerEvent> takeEvents() { return worker_.takeEvents(); }
    // Hands the events waiting to `engine` (onPrepared, onChunkDone).
    void deliverTo(Engine& engine);

    // TrimPort, loop thread only.
    void prepare(const Mount& mount) override;
    void trimChunk(const TrimRange& range, std::uint64_t minimumExtent) override;
    void release() override;

private:
    struct PrepareTask {
        Mount mount;
    };
    struct ChunkTask {
        TrimRange range;
        std::uint64_t minimumExtent = 0;
    };
    struct ReleaseTask {};
    using Task = std::variant<PrepareTask, ChunkTask, ReleaseTask>;

    // Worker thread.
    std::optional<WorkerEvent> perform(Task& task);

    UniqueFd mountFd_; // worker thread only: the filesystem being trimmed
    // Last: its thread, which uses mountFd_, is joined first.
    PostedWorker<Task, WorkerEvent> worker_;
};

} // namespace thintrim::daemon
