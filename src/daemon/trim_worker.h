// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "inventory.h"
#include "trim.h"
#include "unique_fd.h"

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

namespace thintrim::daemon {

// One filesystem to trim.
struct TrimTask {
    std::uint64_t jobId = 0;
    Mount mount;
    TrimOptions options;
};

struct TrimProgressEvent {
    std::uint64_t jobId = 0;
    TrimProgress progress;
};

struct TrimDoneEvent {
    std::uint64_t jobId = 0;
    TrimReport report;
};

using WorkerEvent = std::variant<TrimProgressEvent, TrimDoneEvent>;

// The one thread that issues FITRIM, so that a slow device never stalls the
// bus. The loop thread hands it one task at a time; the worker reports back
// through a queue and an eventfd the loop polls: progress after every chunk,
// then exactly one TrimDoneEvent per task.
class TrimWorker {
public:
    TrimWorker();
    // Cancels the running task and joins the thread.
    ~TrimWorker();
    TrimWorker(const TrimWorker&) = delete;
    TrimWorker& operator=(const TrimWorker&) = delete;

    // Readable when events are waiting; poll it, then takeEvents().
    [[nodiscard]] int eventFd() const { return eventFd_.get(); }

    // Loop thread only, and only while !busy().
    void start(TrimTask task);
    // Stops the running task at its next chunk boundary; no-op when idle.
    void cancel();
    // True from start() until its TrimDoneEvent was taken.
    [[nodiscard]] bool busy() const { return busy_; }
    [[nodiscard]] std::vector<WorkerEvent> takeEvents();

private:
    void run(const std::stop_token& stop);
    void post(WorkerEvent event);

    UniqueFd eventFd_;
    bool busy_ = false; // loop thread's view

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::optional<TrimTask> pending_;
    // Replaced per task; shared because the loop thread may cancel while the
    // worker holds it.
    std::shared_ptr<CancelToken> cancel_;
    std::vector<WorkerEvent> events_;

    std::jthread thread_; // last: started after everything it uses
};

} // namespace thintrim::daemon
