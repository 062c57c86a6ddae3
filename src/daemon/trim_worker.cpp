// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim_worker.h"

#include "error.h"

#include <cerrno>

#include <sys/eventfd.h>
#include <unistd.h>

namespace thintrim::daemon {

TrimWorker::TrimWorker()
    : eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread_([this](const std::stop_token& stop) { run(stop); }) {
    if (!eventFd_.isValid())
        throwSystemError("eventfd", errno);
}

TrimWorker::~TrimWorker() {
    thread_.request_stop();
    wake_.notify_all();
}

void TrimWorker::prepare(const Mount& mount) {
    push(PrepareTask{mount});
}

void TrimWorker::trimChunk(const TrimRange& range, std::uint64_t minimumExtent) {
    push(ChunkTask{range, minimumExtent});
}

void TrimWorker::release() {
    push(ReleaseTask{});
}

void TrimWorker::push(Task task) {
    {
        const std::lock_guard lock{mutex_};
        tasks_.push_back(std::move(task));
    }
    wake_.notify_all();
}

std::vector<WorkerEvent> TrimWorker::takeEvents() {
    std::uint64_t counter = 0;
    // Reset the eventfd before taking the queue so that a post racing with us
    // leaves it readable.
    [[maybe_unused]] const auto ignored = ::read(eventFd_.get(), &counter, sizeof counter);
    std::vector<WorkerEvent> events;
    {
        const std::lock_guard lock{mutex_};
        events.swap(events_);
    }
    return events;
}

void TrimWorker::post(WorkerEvent event) {
    {
        const std::lock_guard lock{mutex_};
        events_.push_back(std::move(event));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(eventFd_.get(), &one, sizeof one);
}

void TrimWorker::run(const std::stop_token& stop) {
    for (;;) {
        Task task;
        {
            std::unique_lock lock{mutex_};
            if (!wake_.wait(lock, stop, [this] { return !tasks_.empty(); }))
                return;
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        if (auto* prepare = std::get_if<PrepareTask>(&task)) {
            post(PreparedEvent{prepareTrim(prepare->mount, mountFd_)});
        } else if (auto* chunk = std::get_if<ChunkTask>(&task)) {
            post(ChunkDoneEvent{trimChunkOn(mountFd_.get(), chunk->range, chunk->minimumExtent)});
        } else {
            mountFd_ = UniqueFd{};
        }
    }
}

} // namespace thintrim::daemon
