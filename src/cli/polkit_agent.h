// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <sys/types.h>

namespace thintrim::cli {

// A text-mode polkit authentication agent (pkttyagent) for as long as this
// object lives, so that polkit can ask for a password on the terminal while
// the daemon checks a call that carries ALLOW_INTERACTIVE_AUTHORIZATION. As
// systemd's tools do it: only when asked, for a user who is not root, with
// standard input a terminal and pkttyagent installed; otherwise nothing
// happens (the call is decided by polkit's rules alone). `--fallback`: an
// agent already running for the session (a desktop's) takes precedence.
class PolkitAgent {
public:
    explicit PolkitAgent(bool wanted);
    ~PolkitAgent();
    PolkitAgent(const PolkitAgent&) = delete;
    PolkitAgent& operator=(const PolkitAgent&) = delete;

private:
    pid_t pid_ = -1;
};

} // namespace thintrim::cli
