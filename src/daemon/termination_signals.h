// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/unique_fd.h"
#include "event_loop.h"

#include <functional>

namespace thintrim::daemon {

// SIGTERM, SIGINT and SIGHUP, read from a signalfd on the loop thread.
// Construct it before any thread starts: it blocks them in the calling
// thread, whose mask later threads inherit, so that they arrive here and
// never end a thread by their default action.
class TerminationSignals {
public:
    // Throws Error(System) when no signalfd can be had.
    TerminationSignals();
    TerminationSignals(const TerminationSignals&) = delete;
    TerminationSignals& operator=(const TerminationSignals&) = delete;

    // Dispatches them on `loop`: SIGHUP to `hangup`, SIGTERM and SIGINT to
    // `terminate`, until unwatch().
    void watch(EventLoop& loop, std::function<void()> hangup, std::function<void()> terminate);
    void unwatch(EventLoop& loop) { loop.unwatch(fd_.get()); }

private:
    UniqueFd fd_;
};

} // namespace thintrim::daemon
