// SPDX-License-Identifier: GPL-2.0-or-later
#include "service/receipt_tracker.h"

namespace thintrim {

void ReceiptTracker::starting(const BlockStack* stack) {
    meter_.reset();
    if (stack != nullptr)
        meter_.emplace(paths_, *stack);
}

bool ReceiptTracker::finished(FilesystemReport& report) {
    bool measured = false;
    if (!report.trim.reachedDiskBytes && meter_ && report.mount) {
        report.trim.reachedDiskBytes = meter_->finish();
        measured = true;
    }
    meter_.reset();
    return measured;
}

} // namespace thintrim
