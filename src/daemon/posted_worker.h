// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"
#include "base/unique_fd.h"

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include <sys/eventfd.h>
#include <unistd.h>

namespace thintrim::daemon {

// A thread of its own for blocking work (FITRIM, verify probes) that must
// never stall the bus: the loop thread pushes tasks, the thread carries them
// out one at a time, in order, and posts what each gives back through an
// eventfd the loop polls. Destruction asks the thread to stop and joins it
// once the task in progress, if any, returns.
template <typename Task, typename Event>
class PostedWorker {
public:
    // Runs on the worker thread, once per task: the event to post, if any.
    using Perform = std::function<std::optional<Event>(Task&)>;

    explicit PostedWorker(Perform perform)
        : perform_(std::move(perform)), eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
          thread_([this](const std::stop_token& stop) { run(stop); }) {
        if (!eventFd_.isValid())
            throwSystemError("eventfd", errno);
    }
    ~PostedWorker() {
        thread_.request_stop();
        wake_.notify_all();
    }
    PostedWorker(const PostedWorker&) = delete;
    PostedWorker& operator=(const PostedWorker&) = delete;

    // Readable when events are waiting; poll it, then takeEvents().
    [[nodiscard]] int eventFd() const { return eventFd_.get(); }

    // Loop thread.
    void push(Task task) {
        {
            const std::lock_guard lock{mutex_};
            tasks_.push_back(std::move(task));
        }
        wake_.notify_all();
    }
    [[nodiscard]] std::vector<Event> takeEvents() {
        std::uint64_t counter = 0;
        // Reset the eventfd before taking the events so that a post racing
        // with us leaves it readable.
        [[maybe_unused]] const auto ignored = ::read(eventFd_.get(), &counter, sizeof counter);
        std::vector<Event> events;
        const std::lock_guard lock{mutex_};
        events.swap(events_);
        return events;
    }

private:
    void run(const std::stop_token& stop) {
        for (;;) {
            std::optional<Task> task;
            {
                std::unique_lock lock{mutex_};
                if (!wake_.wait(lock, stop, [this] { return !tasks_.empty(); }))
                    return;
                task.emplace(std::move(tasks_.front()));
                tasks_.pop_front();
            }
            std::optional<Event> event = perform_(*task);
            if (!event)
                continue;
            {
                const std::lock_guard lock{mutex_};
                events_.push_back(std::move(*event));
            }
            const std::uint64_t one = 1;
            [[maybe_unused]] const auto ignored = ::write(eventFd_.get(), &one, sizeof one);
        }
    }

    Perform perform_;
    UniqueFd eventFd_;

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::deque<Task> tasks_;
    std::vector<Event> events_;

    std::jthread thread_; // last: started after everything it uses
};

} // namespace thintrim::daemon
