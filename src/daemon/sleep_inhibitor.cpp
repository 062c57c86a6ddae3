// SPDX-License-Identifier: GPL-2.0-or-later
#include "sleep_inhibitor.h"

#include "log.h"
#include "sdbus_compat.h"

#include <fmt/format.h>

namespace thintrim::daemon {

namespace {

constexpr const char* kLogindName = "org.freedesktop.login1";
constexpr const char* kLogindPath = "/org/freedesktop/login1";
constexpr const char* kLogindManager = "org.freedesktop.login1.Manager";

} // namespace

SleepInhibitor::SleepInhibitor(sdbus::IConnection& bus, Handler onPrepareForSleep)
    : logind_(dbus::createProxy(bus, kLogindName, kLogindPath)),
      onPrepareForSleep_(std::move(onPrepareForSleep)) {
    logind_->uponSignal("PrepareForSleep")
        .onInterface(kLogindManager)
        .call([this](bool goingToSleep) { onPrepareForSleep_(goingToSleep); });
    dbus::finishRegistration(*logind_);
}

SleepInhibitor::~SleepInhibitor() {
    logind_->unregister();
}

void SleepInhibitor::want(bool wanted) {
    wanted_ = wanted;
    if (!wanted_) {
        if (lock_.isValid())
            logMessage(LogLevel::Debug, "released the sleep delay lock");
        lock_.reset();
        return;
    }
    if (!lock_.isValid() && !requesting_ && !unavailable_)
        request();
}

void SleepInhibitor::request() {
    requesting_ = true;
    logind_->callMethodAsync("Inhibit")
        .onInterface(kLogindManager)
        .withArguments(std::string("sleep"), std::string("thintrimd"),
                       std::string("Trimming: sleep waits for the current chunk to end"),
                       std::string("delay"))
        .uponReplyInvoke([this](dbus::AsyncError failure, sdbus::UnixFd fd) {
            requesting_ = false;
            if (const sdbus::Error* error = dbus::errorOf(failure)) {
                unavailable_ = true;
                logMessage(LogLevel::Info,
                           fmt::format("no sleep delay lock ({}): a system suspend during a "
                                       "trim freezes it mid-chunk",
                                       error->getMessage()));
                return;
            }
            if (!wanted_)
                return; // fd closes here
            lock_ = std::move(fd);
            logMessage(LogLevel::Debug, "holding a sleep delay lock while trimming");
        });
}

} // namespace thintrim::daemon
