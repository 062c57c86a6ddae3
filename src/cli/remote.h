// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/error.h"
#include "engine/diagnose.h"
#include "exit_codes.h"
#include "render.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sdbus {
class Error;
}

// The CLI's side of thintrimd: every command that goes through the daemon.
// Each function takes parsed options and returns the process exit code;
// failures are thrown as thintrim::Error carrying a sentence for a person
// (never a D-Bus name), for main()'s error boundary to print.
namespace thintrim::cli::remote {

struct RemoteOptions {
    bool json = false;    // --json
    RenderOptions render; // --bytes
    // Calls that change something let polkit ask for a password (and a
    // terminal gets pkttyagent for it); false with --no-ask-password.
    bool askPassword = true;
};

struct TrimRequest {
    std::vector<std::string> mountPoints; // empty: every eligible filesystem (--all)
    bool noWait = false;                  // --no-wait: print the job id and return
    bool dryRun = false;                  // --dry-run
    // Already parsed (parseSize/parseRate); nullopt: the daemon's configuration.
    std::optional<std::uint64_t> minimumExtent; // --minimum
    std::optional<std::uint64_t> rateLimit;     // --rate
    std::optional<std::uint64_t> chunkSize;     // --chunk
};

// True when thintrimd already owns its name on the system bus. Never starts
// it (no D-Bus activation: read commands must not start a daemon that an
// administrator stopped or disabled) and never throws: false when there is
// no system bus or no daemon.
[[nodiscard]] bool daemonReachable();

// `thintrim status`: daemon state, next and last run, and one line per
// filesystem with its last trim and next trim.
int status(const RemoteOptions& options);

// `thintrim list` through the daemon: the managed filesystems with their
// verdict and history. (`list --all` needs the local inventory: the daemon
// publishes managed filesystems only.)
int list(const RemoteOptions& options);

// `thintrim trim`: queues a job; unless noWait, follows it through the
// daemon's signals (a progress bar on a terminal, plain lines otherwise),
// prints one line per filesystem and returns 0, 32 (all failed), 64 (some
// failed) or 1 (cancelled). Ctrl-C stops waiting, not the job.
int trim(const RemoteOptions& options, const TrimRequest& request);

// `thintrim cancel [JOB]`: 0 = the running job.
int cancel(const RemoteOptions& options, std::uint64_t job);
int suspend(const RemoteOptions& options);
int resume(const RemoteOptions& options);
// `thintrim reload`: an invalid configuration fails with the daemon's
// message (file, line, key); the old one stays in force.
// Manager.Diagnose: `thintrim doctor` through the daemon.
[[nodiscard]] std::vector<Finding> diagnose();

int reload(const RemoteOptions& options);

// Manager.Verify: `thintrim verify` through the daemon (which needs the
// same authorization as Trim); empty = every eligible filesystem.
[[nodiscard]] std::vector<VerifyResult> verify(const RemoteOptions& options,
                                               const std::vector<std::string>& mountPoints);

// The reverse of the daemon's error boundary: a D-Bus error from a call to
// thintrimd as the thintrim::Error it stands for, with a sentence. Errors the
// daemon sends keep its message; the bus's own (no daemon, timeout, policy)
// get one written here.
[[nodiscard]] Error errorFromBus(const sdbus::Error& error);

} // namespace thintrim::cli::remote
