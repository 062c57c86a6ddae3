// SPDX-License-Identifier: GPL-2.0-or-later
#include "termination_signals.h"

#include "base/error.h"

#include <cerrno>

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace thintrim::daemon {

TerminationSignals::TerminationSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    fd_ = UniqueFd{::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK)};
    if (!fd_.isValid())
        throwSystemError("signalfd", errno);
}

void TerminationSignals::watch(EventLoop& loop, std::function<void()> hangup,
                               std::function<void()> terminate) {
    loop.watch(
        fd_.get(),
        [this, hangup = std::move(hangup), terminate = std::move(terminate)] {
            signalfd_siginfo info{};
            while (::read(fd_.get(), &info, sizeof info) == sizeof info) {
                if (info.ssi_signo == SIGHUP)
                    hangup();
                else
                    terminate();
            }
        },
        "handling a signal");
}

} // namespace thintrim::daemon
