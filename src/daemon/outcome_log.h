// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "engine.h"
#include "verify.h"

#include <string>

namespace thintrim::daemon {

// The journal entries of what thintrimd did, each with its message id and
// fields (log.h), so that `journalctl MESSAGE_ID=...` finds them.

// One filesystem's trim ended: its result, bytes and receipt.
void logFilesystemTrimmed(const FilesystemReport& filesystem);
// A verify of `mountPoint` ended with `report`.
void logFilesystemVerified(const std::string& mountPoint, const VerifyReport& report);
void logJobFinished(const JobSummary& summary);

} // namespace thintrim::daemon
