// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/system_paths.h"
#include "engine/engine.h"
#include "stack/block_stack.h"
#include "trim/receipts.h"

#include <optional>

namespace thintrim {

// The receipt lifecycle of the engine's runs, one filesystem at a time: the
// discard counters of the leaves under the filesystem are read when its run
// starts (EngineEvents::filesystemStarting()) and again when it ends
// (filesystemFinished()).
class ReceiptTracker {
public:
    explicit ReceiptTracker(SystemPaths paths) : paths_(std::move(paths)) {}

    // A run starts on `stack`; nullptr (no stack known): no receipt for it.
    // Forgets a run that never finished.
    void starting(const BlockStack* stack);
    // The run of `report` ended: sets report.trim.reachedDiskBytes from the
    // counters when its start was measured and nothing set it already (a dry
    // run's is 0). True when it did, so that the history gets it too
    // (Engine::recordReceipt()). Only the run starting() measured: a
    // filesystem skipped before it started has no receipt.
    [[nodiscard]] bool finished(FilesystemReport& report);

private:
    SystemPaths paths_;
    std::optional<ReceiptMeter> meter_;
};

} // namespace thintrim
