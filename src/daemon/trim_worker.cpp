// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim_worker.h"

#include "error.h"

#include <cerrno>

#include <sys/eventfd.h>

namespace thintrim::daemon {

TrimWorker::TrimWorker()
    : eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread_([this](const std::stop_token& stop) { run(stop); }) {
    if (!eventFd_.isValid())
        throwSystemError("eventfd", errno);
}

TrimWorker::~TrimWorker() {
    cancel();
    thread_.request_stop();
    wake_.notify_all();
}

void TrimWorker::start(TrimTask task) {
    {
        const std::lock_guard lock{mutex_};
        cancel_ = std::make_shared<CancelToken>();
        pending_ = std::move(task);
    }
    busy_ = true;
    wake_.notify_all();
}

void TrimWorker::cancel() {
    std::shared_ptr<CancelToken> token;
    {
        const std::lock_guard lock{mutex_};
        token = cancel_;
    }
    if (token)
        token->cancel();
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
    for (const WorkerEvent& event : events) {
        if (std::holds_alternative<TrimDoneEvent>(event))
            busy_ = false;
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
        TrimTask task;
        std::shared_ptr<CancelToken> cancel;
        {
            std::unique_lock lock{mutex_};
            if (!wake_.wait(lock, stop, [this] { return pending_.has_value(); }))
                return;
            task = std::move(*pending_);
            pending_.reset();
            cancel = cancel_;
        }
        const std::uint64_t jobId = task.jobId;
        TrimReport report = trimFilesystem(task.mount, task.options, *cancel,
                                           [this, jobId](const TrimProgress& progress) {
                                               post(TrimProgressEvent{jobId, progress});
                                           });
        post(TrimDoneEvent{jobId, std::move(report)});
    }
}

} // namespace thintrim::daemon
