// SPDX-License-Identifier: GPL-2.0-or-later
#include "polkit_agent.h"

#include "base/unique_fd.h"

#include <array>
#include <cerrno>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace thintrim::cli {

namespace {

constexpr const char* kAgentPath = "/usr/bin/pkttyagent";
// pkttyagent closes its notify fd once registered; a broken one must not
// hold up the command for long.
constexpr int kRegistrationTimeoutMs = 10'000;

} // namespace

PolkitAgent::PolkitAgent(bool wanted) {
    if (!wanted || ::geteuid() == 0 || ::isatty(STDIN_FILENO) == 0 ||
        ::access(kAgentPath, X_OK) != 0)
        return;
    std::array<int, 2> pipe{-1, -1};
    if (::pipe2(pipe.data(), O_CLOEXEC) != 0)
        return;
    UniqueFd readEnd{pipe[0]};
    UniqueFd writeEnd{pipe[1]};
    const pid_t child = ::fork();
    if (child < 0)
        return;
    if (child == 0) {
        // The notify fd must survive exec: a copy without O_CLOEXEC.
        const int notify = ::fcntl(writeEnd.get(), F_DUPFD, 3);
        if (notify < 0)
            ::_exit(127);
        const std::string notifyFd = std::to_string(notify);
        ::execl(kAgentPath, kAgentPath, "--notify-fd", notifyFd.c_str(), "--fallback",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    pid_ = child;
    writeEnd.reset();
    // Wait until it has registered with polkit (it closes the pipe), or died.
    pollfd wait{readEnd.get(), POLLIN, 0};
    while (::poll(&wait, 1, kRegistrationTimeoutMs) < 0 && errno == EINTR) {
    }
}

PolkitAgent::~PolkitAgent() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGTERM);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
}

} // namespace thintrim::cli
