// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <functional>
#include <memory>

#include <sdbus-c++/sdbus-c++.h>

namespace thintrim::daemon {

// logind's sleep delay lock (org.freedesktop.login1.Manager.Inhibit "sleep",
// mode "delay") while thintrimd trims, and its PrepareForSleep signal: a
// suspend then waits until the chunk in flight has ended and the cursor is
// saved (logind waits at most InhibitDelayMaxSec). Without logind (a
// container, a private test bus) there is no lock and no signal.
class SleepInhibitor {
public:
    // `onPrepareForSleep(true)` before the system sleeps, `(false)` after it
    // woke up; on the loop thread.
    using Handler = std::function<void(bool goingToSleep)>;
    SleepInhibitor(sdbus::IConnection& bus, Handler onPrepareForSleep);
    ~SleepInhibitor();
    SleepInhibitor(const SleepInhibitor&) = delete;
    SleepInhibitor& operator=(const SleepInhibitor&) = delete;

    // Takes the lock when `wanted` and releases it otherwise. Asynchronous;
    // the latest call wins.
    void want(bool wanted);
    [[nodiscard]] bool held() const { return lock_.isValid(); }

private:
    void request();

    std::unique_ptr<sdbus::IProxy> logind_;
    Handler onPrepareForSleep_;
    sdbus::UnixFd lock_;
    bool wanted_ = false;
    bool requesting_ = false;
    bool unavailable_ = false; // logind did not answer: stop asking
};

} // namespace thintrim::daemon
