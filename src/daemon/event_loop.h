// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/unique_fd.h"
#include "base/units.h"

#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sdbus {
class IConnection;
}

namespace thintrim::daemon {

// The daemon's only loop: poll() over the bus connection and the daemon's own
// file descriptors (worker eventfd, timerfds, signalfd, mount monitor). Every
// handler and every bus call runs on the thread that calls run(); sdbus-c++
// 1.2 has no way to wake its loop from another thread, so other threads talk
// to this one only through descriptors it polls.
//
// Every handler runs inside one boundary (as sd-event contains a failing
// source): an exception no handler expected is logged with what the loop was
// doing, the failure callback saves what must not be lost, and run() returns
// kExitHandlerFailed, so the daemon stops with an honest message instead of
// unwinding out of the loop or carrying on in an unknown state.
class EventLoop {
public:
    using Handler = std::function<void()>;

    static constexpr int kExitHandlerFailed = 1;

    explicit EventLoop(sdbus::IConnection& bus) : bus_(bus) {}
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Calls `handler` whenever `fd` is readable, until unwatch(fd). The fd
    // stays owned by the caller. `what` completes "while ..." in the log
    // ("handling a signal").
    void watch(int fd, Handler handler, std::string what = "handling an event");
    void unwatch(int fd);

    // Runs `handler` once, after the current dispatch round: after the reply
    // to the method call being handled has been queued.
    void defer(Handler handler);

    // Called once after a handler failed, before run() returns: saves state.
    // Its own failure is logged, not thrown.
    void onHandlerFailure(Handler callback) { onFailure_ = std::move(callback); }

    // Dispatches until quit(); returns its exit code (kExitHandlerFailed
    // after a handler failed).
    int run();
    void quit(int exitCode);

private:
    struct Watch {
        Handler handler;
        std::string what;
    };

    void dispatchBus();
    void runDeferred();
    // The boundary: runs `handler`, or logs, saves and quits if it throws.
    void guard(const std::string& what, const Handler& handler);

    sdbus::IConnection& bus_;
    std::map<int, Watch> handlers_;
    Handler onFailure_;
    bool failed_ = false;
    std::vector<Handler> deferred_;
    bool running_ = false;
    int exitCode_ = 0;
};

// A timerfd that the loop watches: fires `handler` once at a deadline. Owns
// its descriptor; destroying it stops watching.
class Timer {
public:
    // `clock`: CLOCK_REALTIME for wall-clock deadlines (schedules survive
    // clock jumps and suspend), CLOCK_MONOTONIC for intervals.
    Timer(EventLoop& loop, clockid_t clock, EventLoop::Handler handler,
          std::string what = "handling a timer");
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Fires at `deadline` (microseconds on the timer's clock); a deadline in
    // the past fires at once. Replaces an earlier arming.
    void armAt(Microseconds deadline);
    // Fires `after` from now, then every `period` if non-zero.
    void armIn(Microseconds after, Microseconds period = Microseconds{0});
    void disarm();

private:
    void onReadable();

    EventLoop& loop_;
    UniqueFd fd_;
    EventLoop::Handler handler_;
};

// Microseconds on `clock` now.
[[nodiscard]] Microseconds clockNow(clockid_t clock);

} // namespace thintrim::daemon
