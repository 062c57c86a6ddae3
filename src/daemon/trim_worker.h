// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "engine.h"
#include "unique_fd.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
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
// an eventfd the loop polls.
class TrimWorker final : public TrimPort {
public:
    TrimWorker();
    // Joins the thread once the call in progress, if any, returns.
    ~TrimWorker() override;
    TrimWorker(const TrimWorker&) = delete;
    TrimWorker& operator=(const TrimWorker&) = delete;

    // Readable when events are waiting; poll it, then takeEvents().
    [[nodiscard]] int eventFd() const { return eventFd_.get(); }
    [[nodiscard]] std::vector<WorkerEvent> takeEvents();

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

    void push(Task task);
    void run(const std::stop_token& stop);
    void post(WorkerEvent event);

    UniqueFd eventFd_;

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::deque<Task> tasks_;
    std::vector<WorkerEvent> events_;

    UniqueFd mountFd_; // worker thread only: the filesystem being trimmed

    std::jthread thread_; // last: started after everything it uses
};

} // namespace thintrim::daemon
