// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "block_stack.h"
#include "inventory.h"
#include "system_paths.h"
#include "unique_fd.h"
#include "verify.h"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace thintrim::daemon {

// One filesystem of a Verify call.
struct VerifyTarget {
    Mount mount;
    std::shared_ptr<const BlockStack> stack;
};

struct VerifyOutcome {
    Mount mount;
    VerifyReport report;
};

// A finished Verify call: its outcomes in the order asked.
struct VerifyDone {
    std::uint64_t request = 0;
    std::vector<VerifyOutcome> outcomes;
};

// The thread that runs verify probes (writes, fsync, FITRIM, O_DIRECT reads:
// blocking I/O that must never stall the bus), one request at a time, apart
// from the trim worker so that a verify does not wait for a long trim. It
// reports finished requests through an eventfd the loop polls.
class VerifyWorker {
public:
    explicit VerifyWorker(SystemPaths paths);
    ~VerifyWorker();
    VerifyWorker(const VerifyWorker&) = delete;
    VerifyWorker& operator=(const VerifyWorker&) = delete;

    [[nodiscard]] int eventFd() const { return eventFd_.get(); }

    // Loop thread: queues a request; returns its id for takeDone().
    std::uint64_t start(std::vector<VerifyTarget> targets);
    [[nodiscard]] std::vector<VerifyDone> takeDone();

private:
    void run(const std::stop_token& stop);

    SystemPaths paths_;
    UniqueFd eventFd_;
    std::uint64_t nextRequest_ = 1; // loop thread only

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::deque<std::pair<std::uint64_t, std::vector<VerifyTarget>>> queue_;
    std::vector<VerifyDone> done_;

    std::jthread thread_; // last: started after everything it uses
};

} // namespace thintrim::daemon
