// SPDX-License-Identifier: GPL-2.0-or-later
#include "event_loop.h"

#include "base/error.h"
#include "log.h"
#include "sdbus_compat.h"

#include <cerrno>
#include <cstdint>
#include <exception>
#include <vector>

#include <fmt/format.h>
#include <poll.h>
#include <sdbus-c++/Error.h>
#include <sdbus-c++/IConnection.h>
#include <sys/timerfd.h>

namespace thintrim::daemon {

void EventLoop::watch(int fd, Handler handler, std::string what) {
    handlers_[fd] = {std::move(handler), std::move(what)};
}

namespace {

// The exception being handled, in words; call only inside catch.
std::string currentExceptionText() {
    try {
        throw;
    } catch (const sdbus::Error& e) {
        return fmt::format("D-Bus: {} ({})", e.getMessage(), e.getName());
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception of unknown type";
    }
}

} // namespace

void EventLoop::guard(const std::string& what, const Handler& handler) {
    if (failed_)
        return;
    try {
        handler();
        return;
    } catch (...) {
        logMessage(LogLevel::Error, fmt::format("internal error while {}: {}; saving the state and "
                                                "stopping",
                                                what, currentExceptionText()));
    }
    failed_ = true;
    if (onFailure_) {
        try {
            onFailure_();
        } catch (...) {
            logMessage(LogLevel::Error,
                       fmt::format("cannot save the state after that: {}", currentExceptionText()));
        }
    }
    quit(kExitHandlerFailed);
}

void EventLoop::unwatch(int fd) {
    handlers_.erase(fd);
}

void EventLoop::defer(Handler handler) {
    deferred_.push_back(std::move(handler));
}

void EventLoop::runDeferred() {
    // Deferred work may defer more (and queue bus messages): until quiet.
    while (!deferred_.empty()) {
        std::vector<Handler> batch;
        batch.swap(deferred_);
        for (Handler& handler : batch)
            guard("running deferred work", handler);
        dispatchBus();
    }
}

void EventLoop::quit(int exitCode) {
    exitCode_ = exitCode;
    running_ = false;
}

void EventLoop::dispatchBus() {
    // Method handlers have their own boundary (bus_boundary.h); this one
    // catches what sdbus-c++ lets through: a signal or reply it cannot send.
    guard("dispatching D-Bus messages", [this] {
        while (dbus::processPending(bus_)) {
        }
    });
}

int EventLoop::run() {
    running_ = true;
    std::vector<pollfd> fds;
    std::vector<int> watched;
    // Messages may already be queued (replies read during startup calls).
    dispatchBus();
    runDeferred();
    while (running_ && !failed_) {
        // The bus says anew each time what it waits for: POLLOUT while
        // replies or signals are still queued, and its own timeout for
        // pending method calls.
        dbus::BusPoll busPoll;
        guard("waiting for D-Bus messages", [&] { busPoll = dbus::busPoll(bus_); });
        if (failed_)
            break;
        fds = busPoll.fds;
        watched.clear();
        for (const auto& [fd, entry] : handlers_) {
            fds.push_back({fd, POLLIN, 0});
            watched.push_back(fd);
        }
        const int ready = ::poll(fds.data(), fds.size(), busPoll.timeoutMs);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            const int error = errno;
            guard("waiting for events", [error] { throwSystemError("poll", error); });
            break;
        }
        dispatchBus();
        runDeferred();
        for (std::size_t index = 0; index < watched.size() && running_; ++index) {
            if (fds[index + busPoll.fds.size()].revents == 0)
                continue;
            // A handler may unwatch others (or itself): look it up each time.
            auto found = handlers_.find(watched[index]);
            if (found == handlers_.end())
                continue;
            const Watch entry = found->second;
            guard(entry.what, entry.handler);
        }
        // Replies and signals the handlers queued go out before we sleep.
        dispatchBus();
        runDeferred();
    }
    return exitCode_;
}

Microseconds clockNow(clockid_t clock) {
    timespec now{};
    ::clock_gettime(clock, &now);
    return Microseconds{std::int64_t{now.tv_sec} * 1'000'000 + now.tv_nsec / 1000};
}

namespace {

timespec toTimespec(Microseconds value) {
    const auto count = value.count();
    return {static_cast<time_t>(count / 1'000'000), static_cast<long>(count % 1'000'000 * 1000)};
}

} // namespace

Timer::Timer(EventLoop& loop, clockid_t clock, EventLoop::Handler handler, std::string what)
    : loop_(loop), fd_(::timerfd_create(clock, TFD_CLOEXEC | TFD_NONBLOCK)),
      handler_(std::move(handler)) {
    if (!fd_.isValid())
        throwSystemError("timerfd_create", errno);
    loop_.watch(
        fd_.get(), [this] { onReadable(); }, std::move(what));
}

Timer::~Timer() {
    loop_.unwatch(fd_.get());
}

void Timer::armAt(Microseconds deadline) {
    // it_value 0 would disarm: the earliest representable moment fires at once.
    itimerspec spec{{0, 0}, toTimespec(std::max(deadline, Microseconds{1}))};
    // TFD_TIMER_CANCEL_ON_SET is not used: a clock jump is handled by
    // recomputing on the next wakeup, and a deadline passed by a jump fires.
    if (::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0)
        throwSystemError("timerfd_settime", errno);
}

void Timer::armIn(Microseconds after, Microseconds period) {
    itimerspec spec{toTimespec(period), toTimespec(std::max(after, Microseconds{1}))};
    if (::timerfd_settime(fd_.get(), 0, &spec, nullptr) != 0)
        throwSystemError("timerfd_settime", errno);
}

void Timer::disarm() {
    itimerspec spec{};
    ::timerfd_settime(fd_.get(), 0, &spec, nullptr);
}

void Timer::onReadable() {
    std::uint64_t expirations = 0;
    if (::read(fd_.get(), &expirations, sizeof expirations) != sizeof expirations)
        return; // spurious (re-armed meanwhile)
    handler_();
}

} // namespace thintrim::daemon
