// SPDX-License-Identifier: GPL-2.0-or-later
#include "verify_worker.h"

#include "dm_thin.h"
#include "error.h"

#include <cerrno>

#include <sys/eventfd.h>
#include <unistd.h>

namespace thintrim::daemon {

VerifyWorker::VerifyWorker(SystemPaths paths)
    : paths_(std::move(paths)), eventFd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread_([this](const std::stop_token& stop) { run(stop); }) {
    if (!eventFd_.isValid())
        throwSystemError("eventfd", errno);
}

VerifyWorker::~VerifyWorker() {
    thread_.request_stop();
    wake_.notify_all();
}

std::uint64_t VerifyWorker::start(std::vector<VerifyTarget> targets) {
    const std::uint64_t request = nextRequest_++;
    {
        const std::lock_guard lock{mutex_};
        queue_.emplace_back(request, std::move(targets));
    }
    wake_.notify_all();
    return request;
}

std::vector<VerifyDone> VerifyWorker::takeDone() {
    std::uint64_t counter = 0;
    [[maybe_unused]] const auto ignored = ::read(eventFd_.get(), &counter, sizeof counter);
    std::vector<VerifyDone> done;
    const std::lock_guard lock{mutex_};
    done.swap(done_);
    return done;
}

void VerifyWorker::run(const std::stop_token& stop) {
    const DmReader dmReader = systemDmReader(paths_);
    for (;;) {
        std::pair<std::uint64_t, std::vector<VerifyTarget>> request;
        {
            std::unique_lock lock{mutex_};
            if (!wake_.wait(lock, stop, [this] { return !queue_.empty(); }))
                return;
            request = std::move(queue_.front());
            queue_.pop_front();
        }
        VerifyDone done{request.first, {}};
        for (VerifyTarget& target : request.second) {
            VerifyReport report = verifyFilesystem(
                paths_, target.mount, target.stack ? &*target.stack : nullptr, dmReader);
            done.outcomes.push_back({std::move(target.mount), std::move(report)});
        }
        {
            const std::lock_guard lock{mutex_};
            done_.push_back(std::move(done));
        }
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto ignored = ::write(eventFd_.get(), &one, sizeof one);
    }
}

} // namespace thintrim::daemon
