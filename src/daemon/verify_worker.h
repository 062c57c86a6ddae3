// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "discovery/inventory.h"
#include "posted_worker.h"
#include "stack/block_stack.h"
#include "stack/dm_thin.h"
#include "trim/verify.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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
// reports finished requests through an eventfd the loop polls (PostedWorker).
class VerifyWorker {
public:
    explicit VerifyWorker(SystemPaths paths);
    VerifyWorker(const VerifyWorker&) = delete;
    VerifyWorker& operator=(const VerifyWorker&) = delete;

    [[nodiscard]] int eventFd() const { return worker_.eventFd(); }

    // Loop thread: queues a request; returns its id for takeDone().
    std::uint64_t start(std::vector<VerifyTarget> targets);
    [[nodiscard]] std::vector<VerifyDone> takeDone() { return worker_.takeEvents(); }

private:
    struct Request {
        std::uint64_t id = 0;
        std::vector<VerifyTarget> targets;
    };
    // Worker thread.
    std::optional<VerifyDone> perform(Request& request);

    const SystemPaths paths_;
    const DmReader dmReader_;
    std::uint64_t nextRequest_ = 1; // loop thread only
    // Last: its thread, which uses the members above, is joined first.
    PostedWorker<Request, VerifyDone> worker_;
};

} // namespace thintrim::daemon
