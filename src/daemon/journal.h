// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"
#include "discovery/catalog.h"
#include "engine/engine.h"
#include "state/state.h"
#include "trim/verify.h"

#include <optional>
#include <string>
#include <vector>

#include <systemd/sd-id128.h>

namespace thintrim::daemon {

// The journal entries of what thintrimd did, with their message ids and
// fields (log.h) where `journalctl MESSAGE_ID=...` should find them.

// One filesystem's trim ended: its result, bytes and receipt.
void logFilesystemTrimmed(const FilesystemReport& filesystem);
// A verify of `mountPoint` ended with `report`.
void logFilesystemVerified(const std::string& mountPoint, const VerifyReport& report);
void logJobFinished(const JobSummary& summary);

// The key that spreads scheduled trims (schedule.h): from /etc/machine-id,
// else random, with a warning.
[[nodiscard]] sd_id128_t machineSplayKey();
// The state in `store`, or an empty one, with a warning, when it is unusable.
[[nodiscard]] State loadStateOrEmpty(const StateStore& store);
void logSleep(bool goingToSleep);
void logSuspended(const std::optional<Engine::Current>& current);
void logConfigRejected(const Error& error);
// A Filesystem object was added for `entry`.
void logManaging(const CatalogEntry& entry);
// State::observeMounts() forgot these (identities with their mount points).
void logForgotten(const std::vector<std::string>& forgotten, Microseconds forgetAfter);

} // namespace thintrim::daemon
