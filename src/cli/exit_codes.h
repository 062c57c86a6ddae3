// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

namespace thintrim::cli {

// fstrim's exit codes, so scripts written for it keep working; local and
// daemon-backed commands share them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitAllFailed = 32;
inline constexpr int kExitSomeFailed = 64;
// Interrupted while waiting for the daemon (the job goes on there).
inline constexpr int kExitInterrupted = 130;

} // namespace thintrim::cli
