// SPDX-License-Identifier: GPL-2.0-or-later
#include "authorizer.h"

#include "bus_names.h"
#include "log.h"

#include <chrono>

#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>

namespace thintrim::daemon {

namespace {

constexpr const char* kPolkitName = "org.freedesktop.PolicyKit1";
// Long enough for polkit to look at the caller, short enough that a hung
// polkit fails the call instead of queueing callers for minutes.
constexpr auto kPolkitTimeout = std::chrono::seconds(25);

Error denied(const std::string& why) {
    return Error(ErrorCode::AccessDenied,
                 fmt::format("{}: changing what thintrimd does needs root or the polkit "
                             "authorization {}",
                             why, dbus::kPolkitAction));
}

} // namespace

Authorizer::Authorizer(sdbus::IConnection& bus)
    : busDaemon_(sdbus::createProxy(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus")),
      polkit_(sdbus::createProxy(bus, kPolkitName, "/org/freedesktop/PolicyKit1/Authority")) {
    busDaemon_->finishRegistration();
    polkit_->finishRegistration();
}

Authorizer::~Authorizer() = default;

void Authorizer::check(const sdbus::Message& call, Verdict verdict) {
    uid_t euid = 0;
    std::string sender;
    try {
        euid = call.getCredsEuid();
        sender = call.getSender();
    } catch (const sdbus::Error& e) {
        verdict(denied(fmt::format("the caller's credentials are unknown ({})", e.getMessage())));
        return;
    }
    if (euid == 0) {
        verdict(std::nullopt);
        return;
    }
    busDaemon_->callMethodAsync("NameHasOwner")
        .onInterface("org.freedesktop.DBus")
        .withArguments(std::string(kPolkitName))
        .withTimeout(kPolkitTimeout)
        .uponReplyInvoke([this, euid, sender, verdict](const sdbus::Error* error, bool running) {
            if (error != nullptr || !running) {
                verdict(denied(fmt::format("user {} is not root and polkit is not running", euid)));
                return;
            }
            askPolkit(sender, verdict);
        });
}

void Authorizer::askPolkit(const std::string& sender, const Verdict& verdict) {
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    const Subject subject{"system-bus-name", {{"name", sdbus::Variant(sender)}}};
    const std::map<std::string, std::string> details;
    // No interaction: a daemon call must not wait for someone to type a password.
    const std::uint32_t flags = 0;
    polkit_->callMethodAsync("CheckAuthorization")
        .onInterface("org.freedesktop.PolicyKit1.Authority")
        .withArguments(subject, std::string(dbus::kPolkitAction), details, flags, std::string())
        .withTimeout(kPolkitTimeout)
        .uponReplyInvoke(
            [verdict](const sdbus::Error* error,
                      const sdbus::Struct<bool, bool, std::map<std::string, std::string>>& result) {
                if (error != nullptr) {
                    logMessage(LogLevel::Warning,
                               fmt::format("polkit CheckAuthorization failed: {}", error->what()));
                    verdict(
                        denied(fmt::format("polkit could not decide ({})", error->getMessage())));
                    return;
                }
                if (std::get<0>(result)) {
                    verdict(std::nullopt);
                    return;
                }
                verdict(denied("polkit did not authorize the caller"));
            });
}

} // namespace thintrim::daemon
